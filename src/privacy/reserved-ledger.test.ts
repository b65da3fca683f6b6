import { describe, expect, it } from "vitest";
import { openDatabase } from "../storage/database.js";
import { createAccountant } from "./accountant/index.js";
import { BudgetLedger } from "./budget-ledger.js";
import { PrivacyBudgetExhaustedError, PrivacyGuard, type GuardLedger } from "./guard.js";
import { checkReservation, ReservedLedger, type StepReservation } from "./reserved-ledger.js";

const SIGMA = 1.1;
const Q = 0.02;
const DELTA = 1e-5;

const guardOn = (ledger: GuardLedger, target: number, jobId = "job") =>
  new PrivacyGuard({
    ledger,
    datasetId: "records:x",
    jobId,
    targetEpsilon: target,
    delta: DELTA,
    noiseMultiplier: SIGMA,
    accountantFromHistory: (h) => createAccountant("rdp", h),
    reserveChunk: 16,
  }).init();

/** Steps the guard lets through before it refuses, at most `max`. */
async function stepsTaken(guard: PrivacyGuard, max: number): Promise<number> {
  let n = 0;
  try {
    for (; n < max; n++) await guard.beforeStep(Q);
  } catch (err) {
    if (!(err instanceof PrivacyBudgetExhaustedError)) throw err;
  }
  await guard.settle();
  return n;
}

describe("ReservedLedger", () => {
  it("lets a guard take exactly the steps the host reserved, and the same steps it takes on the persistent ledger", async () => {
    const db = await openDatabase({ workspace: "", memory: true });
    try {
      const ledger = await BudgetLedger.open(db);
      // Earlier spending on the dataset, which both guards must see.
      await ledger.reserve(
        "records:x",
        "earlier",
        { noiseMultiplier: SIGMA, sampleRate: Q, delta: DELTA },
        () => 40,
      );
      // In-process: the guard on the persistent ledger, up to the target 3.
      const inProcess = await stepsTaken(await guardOn(ledger, 3, "in-process"), 10_000);
      await ledger.reset("records:x", "test: the same history again");
      await ledger.reserve(
        "records:x",
        "earlier",
        { noiseMultiplier: SIGMA, sampleRate: Q, delta: DELTA },
        () => 40,
      );
      // Isolated: the host reserves for the task in one row, the task's guard runs on the reservation.
      const host = await guardOn(ledger, 3, "isolated");
      const { id, ...reservation } = await host.reserveForTask(Q, 10_000);
      expect(inProcess).toBeGreaterThan(100);
      expect(reservation.steps).toBe(inProcess);
      expect(reservation.before.history).toEqual([{ noiseMultiplier: SIGMA, sampleRate: Q, steps: 40 }]);
      const reserved = new ReservedLedger(reservation);
      expect(await stepsTaken(await guardOn(reserved, 3, "isolated"), 10_000)).toBe(inProcess);
      expect(reserved.stepsGranted).toBe(inProcess);
      await ledger.settle(id, reservation.steps);
      const jobs = await ledger.jobs("records:x");
      expect(jobs.find((j) => j.jobId === "isolated")).toMatchObject({ steps: inProcess, reserved: false });
    } finally {
      await db.close();
    }
  });

  it("never grants more than the reservation, even to a guard whose own target would allow more", async () => {
    const r: StepReservation = {
      datasetId: "records:x",
      jobId: "job",
      noiseMultiplier: SIGMA,
      sampleRate: Q,
      delta: DELTA,
      steps: 7,
      before: { history: [], delta: null },
    };
    const reserved = new ReservedLedger(r);
    expect(await stepsTaken(await guardOn(reserved, 5), 1000)).toBe(7);
    expect(reserved.stepsGranted).toBe(7);
    // Another sample rate or noise multiplier than the one reserved gets nothing.
    const other = new ReservedLedger(r);
    const g = await guardOn(other, 5);
    await expect(Promise.resolve().then(() => g.beforeStep(Q / 2))).rejects.toBeInstanceOf(
      PrivacyBudgetExhaustedError,
    );
    expect(other.stepsGranted).toBe(0);
    await expect(other.state("records:other")).rejects.toMatchObject({ code: "RESERVATION_INVALID" });
  });

  it("refuses a malformed reservation, naming the field", () => {
    const good: StepReservation = {
      datasetId: "d",
      jobId: "j",
      noiseMultiplier: 1,
      sampleRate: 0.1,
      delta: 1e-5,
      steps: 3,
      before: { history: [], delta: null },
    };
    expect(checkReservation(good)).toBe(good);
    for (const [field, patch] of [
      ["steps", { steps: -1 }],
      ["steps", { steps: 1.5 }],
      ["sampleRate", { sampleRate: 2 }],
      ["noiseMultiplier", { noiseMultiplier: 0 }],
      ["delta", { delta: 1 }],
      [
        "before.history",
        { before: { history: [{ noiseMultiplier: 1, sampleRate: 0.1, steps: -4 }], delta: null } },
      ],
      ["before.delta", { before: { history: [], delta: 0 } }],
    ] as const)
      expect(() => checkReservation({ ...good, ...patch } as StepReservation)).toThrow(
        `step reservation: ${field} is invalid`,
      );
  });
});
