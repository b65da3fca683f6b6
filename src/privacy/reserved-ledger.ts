import { EnclaveError } from "../errors.js";
import type { BudgetSegment, DatasetBudgetState } from "./budget-ledger.js";
import type { GuardLedger } from "./guard.js";

/** What a host reserved in its persistent ledger for one isolated task, as the task receives it. */
export interface StepReservation {
  /** The ledger key the host reserved under (the records' identity). */
  datasetId: string;
  jobId: string;
  noiseMultiplier: number;
  sampleRate: number;
  delta: number;
  /** Steps reserved; the task can take no more. */
  steps: number;
  /** The dataset's ledger state at reservation time, the reservation itself excluded. */
  before: DatasetBudgetState;
}

/** A reservation that does not describe a well-formed, bounded set of steps. */
export class ReservationInvalidError extends EnclaveError {
  constructor(field: string) {
    super("RESERVATION_INVALID", `step reservation: ${field} is invalid`);
  }
}

const positive = (x: unknown) => typeof x === "number" && Number.isFinite(x) && x > 0;
const MAX_SEGMENTS = 100_000;

/** Refuses (ReservationInvalidError, naming the field) a reservation that is not well formed. */
export function checkReservation(r: StepReservation): StepReservation {
  if (typeof r !== "object" || r === null) throw new ReservationInvalidError("(reservation)");
  if (typeof r.datasetId !== "string" || !r.datasetId) throw new ReservationInvalidError("datasetId");
  if (typeof r.jobId !== "string") throw new ReservationInvalidError("jobId");
  if (!positive(r.noiseMultiplier)) throw new ReservationInvalidError("noiseMultiplier");
  if (!positive(r.sampleRate) || r.sampleRate > 1) throw new ReservationInvalidError("sampleRate");
  if (!positive(r.delta) || r.delta >= 1) throw new ReservationInvalidError("delta");
  if (!Number.isInteger(r.steps) || r.steps < 0) throw new ReservationInvalidError("steps");
  const h = r.before?.history;
  if (!Array.isArray(h) || h.length > MAX_SEGMENTS) throw new ReservationInvalidError("before.history");
  for (const s of h)
    if (
      !(typeof s.noiseMultiplier === "number" && s.noiseMultiplier >= 0) ||
      !(typeof s.sampleRate === "number" && s.sampleRate >= 0 && s.sampleRate <= 1) ||
      !(Number.isInteger(s.steps) && s.steps >= 0)
    )
      throw new ReservationInvalidError("before.history");
  const d = r.before.delta;
  if (d !== null && !(positive(d) && d < 1)) throw new ReservationInvalidError("before.delta");
  return r;
}

/**
 * The ledger an isolated task's guard runs on: the host's ledger state as it was when the host
 * reserved the task's steps, and an allowance of exactly those steps, at exactly the reserved noise
 * multiplier and sample rate. The guard reserves from it as it would from the persistent ledger (so
 * its step-by-step decisions are the same as in-process), but it can never be granted more than the
 * host reserved: the host's ledger already counts them, whatever the task does.
 */
export class ReservedLedger implements GuardLedger {
  private readonly segments: (BudgetSegment & { id: string })[] = [];
  private granted = 0;

  constructor(private readonly r: StepReservation) {
    checkReservation(r);
  }

  /** Steps granted to the guard so far (reserved chunks, shrunk to what was used when settled). */
  get stepsGranted(): number {
    return this.segments.reduce((n, s) => n + s.steps, 0);
  }

  adopt(): Promise<number> {
    return Promise.resolve(0); // the host adopted legacy keys before reserving
  }

  async state(datasetId: string): Promise<DatasetBudgetState> {
    this.sameDataset(datasetId);
    const ours = this.segments.filter((s) => s.steps > 0).map(({ id: _id, ...s }) => s);
    const delta = this.r.before.delta === null ? this.r.delta : Math.min(this.r.before.delta, this.r.delta);
    return { history: [...this.r.before.history, ...ours], delta: ours.length ? delta : this.r.before.delta };
  }

  async reserve(
    datasetId: string,
    _jobId: string,
    segment: Omit<BudgetSegment, "steps"> & { delta?: number },
    decide: (history: BudgetSegment[], state: DatasetBudgetState) => number,
  ): Promise<{ id: string; steps: number; history: BudgetSegment[]; state: DatasetBudgetState }> {
    const state = await this.state(datasetId);
    const same =
      segment.noiseMultiplier === this.r.noiseMultiplier &&
      segment.sampleRate === this.r.sampleRate &&
      (segment.delta ?? this.r.delta) === this.r.delta;
    const left = same ? this.r.steps - this.granted : 0;
    const steps = Math.min(left, Math.max(0, Math.floor(decide(state.history, state))));
    if (steps <= 0) return { id: "", steps: 0, history: state.history, state };
    const id = String(this.segments.length + 1);
    this.segments.push({
      id,
      noiseMultiplier: segment.noiseMultiplier,
      sampleRate: segment.sampleRate,
      steps,
    });
    this.granted += steps;
    return { id, steps, history: state.history, state };
  }

  /**
   * Shrink a chunk to the steps used, as the persistent ledger does. The allowance does not grow back:
   * steps granted once stay granted (the host counts the whole reservation anyway).
   */
  settle(id: string, usedSteps: number): Promise<void> {
    const s = this.segments.find((x) => x.id === id);
    if (s) s.steps = Math.min(s.steps, Math.max(0, usedSteps));
    return Promise.resolve();
  }

  private sameDataset(datasetId: string): void {
    if (datasetId !== this.r.datasetId) throw new ReservationInvalidError("datasetId");
  }
}
