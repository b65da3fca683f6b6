import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BudgetLedger } from "../../src/privacy/budget-ledger.js";
import { openDatabase } from "../../src/storage/database.js";
import { describeOnPostgres } from "../support/postgres-server.js";
import { runJobProcess } from "./job-process-run.js";
import { writePresentations } from "./presentations.js";

/** A pid that is certainly not running: the largest pid Linux allows, plus one. */
const DEAD_PID = 4194305;
const WRITERS = 3;
const STEPS = 40;
const TRIALS = 6;

async function writer(args: object): Promise<{ steps: number }> {
  const r = await runJobProcess(args);
  if (r.killed) throw new Error("writer was killed");
  return r.result as { steps: number };
}

/**
 * Three writer processes start at once on one dataset, each reserving and taking STEPS steps in
 * chunks of 8 (well inside the budget); afterwards the ledger holds exactly every step each one
 * took, trial after trial. Before the atomic lock, a dead pid in the embedded database's lock file
 * let two writers hold the database together, and 6 of 8 trials recorded half of the steps.
 */
async function trials(backend: () => Promise<{ workspace: string; url: string }>) {
  const [file] = writePresentations(mkdtempSync(join(tmpdir(), "enclave-writers-data-")));
  const lost: string[] = [];
  for (let t = 0; t < TRIALS; t++) {
    const b = await backend();
    if (!b.url) {
      mkdirSync(join(b.workspace, "db"), { recursive: true });
      writeFileSync(join(b.workspace, "db", ".enclave-lock"), String(DEAD_PID));
    }
    const args = (i: number) => ({
      ...b,
      dataFile: file,
      jobId: `writer-${i}`,
      delta: 1e-5,
      accountant: "rdp",
      sampleRate: 0.01,
      noiseMultiplier: 2,
      target: 5,
      steps: STEPS,
      chunk: 8,
      waitForLock: true,
    });
    const results = await Promise.all(Array.from({ length: WRITERS }, (_, i) => writer(args(i))));
    const db = await openDatabase(b);
    try {
      const ledger = await BudgetLedger.open(db);
      const keys = await ledger.datasets();
      const recorded = (await ledger.history(keys[0])).reduce((s, h) => s + h.steps, 0);
      const taken = results.reduce((s, r) => s + r.steps, 0);
      expect(taken, `trial ${t}`).toBe(WRITERS * STEPS);
      if (recorded !== taken) lost.push(`trial ${t}: ${recorded} of ${taken} steps recorded`);
    } finally {
      await db.close();
    }
  }
  expect(lost).toEqual([]);
}

describe(`${WRITERS} writers reserving steps concurrently lose no steps (${TRIALS} trials, real processes)`, () => {
  it("embedded PostgreSQL (PGlite), a dead pid in the lock file", { timeout: 600_000 }, async () => {
    await trials(async () => ({ workspace: mkdtempSync(join(tmpdir(), "enclave-writers-")), url: "" }));
  });

  describeOnPostgres("real PostgreSQL server", (server) => {
    it("truly concurrent writers", { timeout: 600_000 }, async () => {
      await trials(async () => ({
        workspace: mkdtempSync(join(tmpdir(), "enclave-writers-pg-")),
        url: await server().freshDatabase(),
      }));
    });
  });
});
