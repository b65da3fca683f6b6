import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../storage/database.js";
import { BudgetLedger } from "./budget-ledger.js";

const root = new URL("../..", import.meta.url).pathname;

/** Runs a script in a fresh Node process (a real restart), importing the sources through tsx. */
function inChildProcess(workspace: string, body: string): string {
  const file = join(workspace, `child-${Math.random().toString(36).slice(2)}.mts`);
  writeFileSync(
    file,
    `import { openDatabase } from ${JSON.stringify(join(root, "src/storage/database.ts"))};
     import { BudgetLedger } from ${JSON.stringify(join(root, "src/privacy/budget-ledger.ts"))};
     const db = await openDatabase({ workspace: ${JSON.stringify(workspace)} });
     const ledger = await BudgetLedger.open(db);
     ${body}
     await db.close();`,
  );
  return execFileSync(process.execPath, ["--import", "tsx", file], {
    cwd: root,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, DATABASE_URL: "" },
  });
}

describe("BudgetLedger on embedded PostgreSQL (PGlite)", () => {
  it("survives a process restart; a crashed reservation counts in full, a settled one as used", () => {
    const ws = mkdtempSync(join(tmpdir(), "enclave-ledger-"));
    inChildProcess(
      ws,
      `const a = await ledger.reserve("ds", "job-1", { noiseMultiplier: 1.1, sampleRate: 0.01 }, () => 64);
       await ledger.settle(a.id, 10);
       // job-2 "crashes": reserves and never settles
       await ledger.reserve("ds", "job-2", { noiseMultiplier: 1.1, sampleRate: 0.01 }, () => 32);
       await ledger.reserve("other", "job-3", { noiseMultiplier: 2, sampleRate: 0.5 }, () => 5);`,
    );
    const out = inChildProcess(
      ws,
      `console.log(JSON.stringify({ h: await ledger.history("ds"), j: await ledger.jobs("ds") }));`,
    );
    const { h, j } = JSON.parse(out.trim().split("\n").pop()!);
    expect(h).toEqual([
      { noiseMultiplier: 1.1, sampleRate: 0.01, steps: 10 },
      { noiseMultiplier: 1.1, sampleRate: 0.01, steps: 32 },
    ]);
    expect(j).toEqual([
      { jobId: "job-1", steps: 10, reserved: false },
      { jobId: "job-2", steps: 32, reserved: true },
    ]);
  });

  it("a reservation never grows on settle, and zero reservations write nothing", async () => {
    const ws = mkdtempSync(join(tmpdir(), "enclave-ledger-"));
    const db = await openDatabase({ workspace: ws, url: "" });
    try {
      const ledger = await BudgetLedger.open(db);
      const r = await ledger.reserve("ds", "j", { noiseMultiplier: 1, sampleRate: 0.1 }, () => 5);
      await ledger.settle(r.id, 50);
      const none = await ledger.reserve("ds", "j", { noiseMultiplier: 1, sampleRate: 0.1 }, (history) => {
        expect(history).toEqual([{ noiseMultiplier: 1, sampleRate: 0.1, steps: 5 }]);
        return 0;
      });
      expect(none.steps).toBe(0);
      expect(await ledger.history("ds")).toEqual([{ noiseMultiplier: 1, sampleRate: 0.1, steps: 5 }]);
    } finally {
      await db.close();
    }
  });

  it("refuses a second process on the same embedded database", async () => {
    const ws = mkdtempSync(join(tmpdir(), "enclave-ledger-"));
    const db = await openDatabase({ workspace: ws, url: "" });
    try {
      expect(() => inChildProcess(ws, "")).toThrow(/DATABASE_LOCKED|in use by process/);
    } finally {
      await db.close();
    }
  });
});
