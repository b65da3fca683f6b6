import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAccountant } from "../../src/privacy/accountant/index.js";
import { BudgetLedger } from "../../src/privacy/budget-ledger.js";
import { PrivacyBudgetExhaustedError, PrivacyGuard } from "../../src/privacy/guard.js";
import { openDatabase, type Database } from "../../src/storage/database.js";
import { describeOnPostgres } from "../support/postgres-server.js";
import { jobSpendFromLedger, ledgerRows, spendOf } from "./ledger-check.js";

/**
 * Two jobs on one dataset, interleaved step by step in a fixed order (the interleaving the
 * real-PostgreSQL property test hit at random): job A (target 3) takes steps, job B starts beside
 * it and spends the dataset past A's target (B's target is 5, or B asks for a smaller delta), then
 * A asks for its next reservation and is refused.
 */
function interleavings(backend: () => { db: Database; ledger: BudgetLedger }) {
  const q = 0.05;
  const guard = (datasetId: string, jobId: string, target: number, delta: number) =>
    new PrivacyGuard({
      ledger: backend().ledger,
      datasetId,
      jobId,
      targetEpsilon: target,
      delta,
      noiseMultiplier: 1,
      accountantFromHistory: (h) => createAccountant("rdp", h),
      reserveChunk: 8,
    }).init();
  const steps = async (g: PrivacyGuard, n: number) => {
    for (let i = 0; i < n; i++) await g.beforeStep(q);
  };
  const untilRefused = async (g: PrivacyGuard) => {
    const err = await steps(g, 100_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PrivacyBudgetExhaustedError);
    await g.settle();
    return err as PrivacyBudgetExhaustedError;
  };

  // [what B does, A's steps first, B's delta, B's steps (null: until its own target 5 refuses it)]
  it.each([
    ["a concurrent job with a higher target", 20, 1e-5, null],
    ["one step of a concurrent job asking for a smaller delta", 30, 1e-7, 1],
  ])(
    "a job refused because %s moved the dataset past its target still ends at or below its own target",
    async (_name, stepsA, deltaB, stepsB) => {
      const targetB = 5;
      const dataset = `interleaved-${deltaB}`;
      const a = await guard(dataset, "job-a", 3, 1e-5);
      await steps(a, stepsA); // inside A's target at A's delta
      const b = await guard(dataset, "job-b", targetB, deltaB);
      if (stepsB === null) await untilRefused(b);
      else await steps(b, stepsB).then(() => b.settle());
      const refused = await untilRefused(a);
      // The refusal names what the dataset has spent now (B's steps included) ...
      expect(refused.spentEpsilon).toBeGreaterThan(3);
      // ... while A's own epsilon is the dataset's spend as of A's last step, at the delta it was checked at.
      expect(a.steps).toBeGreaterThan(0);
      expect(a.spentEpsilon()).toBeLessThanOrEqual(3);
      expect(a.delta).toBe(1e-5);

      // Independently, from the ledger's rows: A's last step and the dataset as a whole.
      const rows = await ledgerRows(backend().db, dataset);
      const spendA = jobSpendFromLedger(rows, "job-a", "rdp", 3)!;
      expect(spendA.epsilon).toBeLessThanOrEqual(3);
      expect(spendA.epsilon).toBeCloseTo(a.spentEpsilon(), 9);
      const state = await backend().ledger.state(dataset);
      expect(state.delta).toBe(Math.min(1e-5, deltaB));
      expect(spendOf(state.history, state.delta!, "rdp", 5)).toBeLessThanOrEqual(Math.min(targetB, 5));
      expect(jobSpendFromLedger(rows, "job-b", "rdp", 5)!.epsilon).toBeLessThanOrEqual(targetB);
    },
  );

  it("a job that finds the dataset already past its target takes no step and reports the dataset's spend", async () => {
    const dataset = "already-spent";
    await untilRefused(await guard(dataset, "job-b", 5, 1e-5));
    const late = await guard(dataset, "job-late", 3, 1e-5);
    await untilRefused(late);
    expect(late.steps).toBe(0);
    expect(late.spentEpsilon()).toBeGreaterThan(3);
  });
}

describe("concurrent jobs on one dataset: each ends within its own target", () => {
  describe("embedded PostgreSQL (PGlite)", () => {
    let db: Database;
    let ledger: BudgetLedger;
    beforeAll(async () => {
      db = await openDatabase({ workspace: mkdtempSync(join(tmpdir(), "enclave-interleave-")), url: "" });
      ledger = await BudgetLedger.open(db);
    });
    afterAll(() => db?.close());
    interleavings(() => ({ db, ledger }));
  });

  describeOnPostgres("real PostgreSQL server", (server) => {
    let db: Database;
    let ledger: BudgetLedger;
    beforeAll(async () => {
      db = await openDatabase({ workspace: "", url: await server().freshDatabase() });
      ledger = await BudgetLedger.open(db);
    });
    afterAll(async () => {
      await db?.close();
    });
    interleavings(() => ({ db, ledger }));
  });
});
