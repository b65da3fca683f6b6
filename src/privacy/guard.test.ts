import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SeededRandom } from "../random.js";
import { openDatabase, type Database } from "../storage/database.js";
import { computeEpsilon, createAccountant } from "./accountant/index.js";
import { BudgetLedger } from "./budget-ledger.js";
import { PrivacyBudgetExhaustedError, PrivacyGuard } from "./guard.js";

const rdp = (h: Parameters<typeof createAccountant>[1]) => createAccountant("rdp", h);

describe("PrivacyGuard", () => {
  let db: Database;
  let ledger: BudgetLedger;
  const workspace = mkdtempSync(join(tmpdir(), "enclave-guard-"));
  beforeAll(async () => {
    db = await openDatabase({ workspace, url: "" });
    ledger = await BudgetLedger.open(db);
  });
  afterAll(() => db.close());

  const guard = (
    datasetId: string,
    o: { target: number; sigma: number; delta?: number; chunk?: number; jobId?: string },
  ) =>
    new PrivacyGuard({
      ledger,
      datasetId,
      jobId: o.jobId ?? "job",
      targetEpsilon: o.target,
      delta: o.delta ?? 1e-5,
      noiseMultiplier: o.sigma,
      accountantFromHistory: rdp,
      reserveChunk: o.chunk,
    }).init();

  /** Steps until the guard refuses; every accepted step is re-checked against computeEpsilon. */
  async function exhaust(g: PrivacyGuard, q: number, cap = 20_000): Promise<number> {
    let steps = 0;
    for (;;) {
      try {
        await g.beforeStep(q);
      } catch (err) {
        expect(err).toBeInstanceOf(PrivacyBudgetExhaustedError);
        expect((err as PrivacyBudgetExhaustedError).code).toBe("PRIVACY_BUDGET_EXHAUSTED");
        await g.settle();
        return steps;
      }
      steps++;
      if (steps > cap) throw new Error("guard never stopped");
    }
  }

  it("never lets epsilon pass the target, and stops exactly at the last step that fits (random configs)", async () => {
    const rng = new SeededRandom("guard-property");
    let checked = 0;
    while (checked < 12) {
      const sigma = 0.6 + rng.uniform() * 2.5;
      const q = 10 ** (-3 + rng.uniform() * 2.7); // 0.001 .. 0.5
      const delta = [1e-5, 1e-6, 1e-3][Math.floor(rng.uniform() * 3)];
      const target = 0.2 + rng.uniform() * 6; // also above the 5.0 ceiling
      const limit = Math.min(target, 5);
      // Independent reference: the largest T with epsilon(T) <= limit, by bisection on computeEpsilon.
      const eps = (t: number) =>
        computeEpsilon({ accountant: "rdp", sampleRate: q, noiseMultiplier: sigma, steps: t, delta }).epsilon;
      if (eps(1) > limit || eps(3000) <= limit) continue; // keep each case small and non-trivial
      let lo = 1;
      let hi = 3000;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (eps(mid) <= limit) lo = mid;
        else hi = mid;
      }
      const id = `prop-${checked}`;
      const g = await guard(id, { target, sigma, delta, chunk: 1 + Math.floor(rng.uniform() * 200) });
      const taken = await exhaust(g, q);
      expect(taken).toBe(lo);
      expect(g.spentEpsilon()).toBeLessThanOrEqual(limit);
      expect(eps(taken + 1)).toBeGreaterThan(limit);
      // Once settled, the ledger's reservations add up to exactly the steps taken.
      const history = await ledger.history(id);
      expect(history.every((h) => h.noiseMultiplier === sigma && h.sampleRate === q)).toBe(true);
      expect(history.reduce((s, h) => s + h.steps, 0)).toBe(taken);
      checked++;
    }
  });

  it("the hard ceiling 5.0 applies even when the target is higher", async () => {
    const g = await guard("ceiling", { target: 50, sigma: 0.8 });
    expect(g.limit).toBe(5);
    await exhaust(g, 0.2);
    expect(g.spentEpsilon()).toBeLessThanOrEqual(5);
    expect(g.spentEpsilon()).toBeGreaterThan(4);
  });

  it("a second job on the same dataset starts from what was spent, also after the database is reopened", async () => {
    const ws = mkdtempSync(join(tmpdir(), "enclave-guard-restart-"));
    const open = async () => {
      const d = await openDatabase({ workspace: ws, url: "" });
      return { d, l: await BudgetLedger.open(d) };
    };
    let { d, l } = await open();
    const first = await new PrivacyGuard({
      ledger: l,
      datasetId: "ds",
      jobId: "job-1",
      targetEpsilon: 2,
      delta: 1e-5,
      noiseMultiplier: 1.1,
      accountantFromHistory: rdp,
    }).init();
    for (let i = 0; i < 150; i++) await first.beforeStep(0.01);
    await first.settle();
    const spent = first.spentEpsilon();
    expect(spent).toBeCloseTo(
      computeEpsilon({ accountant: "rdp", sampleRate: 0.01, noiseMultiplier: 1.1, steps: 150, delta: 1e-5 })
        .epsilon,
      12,
    );
    await d.close();

    ({ d, l } = await open());
    const second = await new PrivacyGuard({
      ledger: l,
      datasetId: "ds",
      jobId: "job-2",
      targetEpsilon: 2,
      delta: 1e-5,
      noiseMultiplier: 1.1,
      accountantFromHistory: rdp,
    }).init();
    expect(second.spentEpsilon()).toBeCloseTo(spent, 12);
    // Only what remains of the budget can be spent by the second job.
    let more = 0;
    try {
      for (;;) {
        await second.beforeStep(0.01);
        more++;
      }
    } catch (err) {
      expect((err as Error).name).toBe("PrivacyBudgetExhaustedError");
    }
    await second.settle();
    const total = computeEpsilon({
      accountant: "rdp",
      sampleRate: 0.01,
      noiseMultiplier: 1.1,
      steps: 150 + more,
      delta: 1e-5,
    }).epsilon;
    expect(total).toBeLessThanOrEqual(2);
    expect(
      computeEpsilon({
        accountant: "rdp",
        sampleRate: 0.01,
        noiseMultiplier: 1.1,
        steps: 151 + more,
        delta: 1e-5,
      }).epsilon,
    ).toBeGreaterThan(2);
    await d.close();
  });

  it("a crash mid-reservation is counted in full after restart (never under-counts)", async () => {
    const g = await guard("crash", { target: 5, sigma: 1, chunk: 50 });
    for (let i = 0; i < 7; i++) await g.beforeStep(0.05);
    // no settle(): the process "dies" here
    const after = await guard("crash", { target: 5, sigma: 1 });
    const expected = computeEpsilon({
      accountant: "rdp",
      sampleRate: 0.05,
      noiseMultiplier: 1,
      steps: 50,
      delta: 1e-5,
    }).epsilon;
    expect(after.spentEpsilon()).toBeCloseTo(expected, 12);
  });
});
