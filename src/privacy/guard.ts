import { EnclaveError } from "../errors.js";
import { EPSILON_HARD_CEILING, deltaRowsIssue } from "../schemas/privacy.js";
import type { BudgetLedger, BudgetSegment, DatasetBudgetState } from "./budget-ledger.js";
import type { StepReservation } from "./reserved-ledger.js";

/** What the guard needs of an accountant: epsilon now, and epsilon if more steps were taken. */
export interface GuardAccountant {
  step(noiseMultiplier: number, sampleRate: number, count?: number): void;
  getEpsilon(delta: number): number;
  epsilonAfter(next: BudgetSegment, delta: number): number;
}

/** The recorded spend a decision is made on: an accountant over the history, and the delta it is evaluated at. */
interface LedgerView {
  accountant: GuardAccountant;
  delta: number;
}

export type AccountantFromHistory = (history: readonly BudgetSegment[]) => GuardAccountant;

export class PrivacyBudgetExhaustedError extends EnclaveError {
  constructor(
    readonly spentEpsilon: number,
    readonly nextEpsilon: number,
    readonly limit: number,
  ) {
    super(
      "PRIVACY_BUDGET_EXHAUSTED",
      `the next step would reach epsilon ${nextEpsilon.toFixed(4)} > limit ${limit} (spent ${spentEpsilon.toFixed(4)}); training stopped`,
    );
  }
}

/** The job's delta is not allowed on this dataset (too large for its n). */
export class DeltaTooLargeError extends EnclaveError {
  constructor(rule: string) {
    super("DELTA_TOO_LARGE", `privacy.delta ${rule}`);
  }
}

/**
 * What the guard needs of a ledger: the persistent BudgetLedger on a host, or a ReservedLedger that
 * holds only the steps a host reserved for one isolated task.
 */
export type GuardLedger = Pick<BudgetLedger, "adopt" | "state" | "reserve" | "settle">;

export interface PrivacyGuardOptions {
  ledger: GuardLedger;
  datasetId: string;
  jobId: string;
  targetEpsilon: number;
  delta: number;
  noiseMultiplier: number;
  accountantFromHistory: AccountantFromHistory;
  /** Steps reserved per ledger write; larger means fewer writes, smaller means less over-count on a crash. */
  reserveChunk?: number;
  /** Training rows: when given, the job's delta must be well below 1/rows (DeltaTooLargeError). */
  rows?: number;
  /** Keys the same data was recorded under before (file hash, dataset id): adopted by `init`. */
  legacyKeys?: readonly string[];
}

/**
 * The Privacy Guard: before every step it computes the epsilon that step would reach, over
 * everything already spent on the dataset, and refuses the step if that passes the job's target
 * or the hard ceiling. Steps are reserved in the persistent ledger before they are taken.
 *
 * Epsilon is evaluated at min(job delta, the dataset's accounting delta): a job asking for a weaker
 * guarantee (a larger delta) cannot re-evaluate the recorded history at its delta and find budget
 * there; it gets only what the dataset's budget at its own delta allows.
 */
export class PrivacyGuard {
  readonly limit: number;
  private accountant: GuardAccountant;
  private accountingDelta: number;
  private reservation: { id: string; steps: number; used: number; sampleRate: number } | null = null;
  private stepsTaken = 0;

  constructor(private readonly o: PrivacyGuardOptions) {
    this.limit = Math.min(o.targetEpsilon, EPSILON_HARD_CEILING);
    if (o.rows !== undefined) {
      const issue = deltaRowsIssue(o.delta, o.rows);
      if (issue) throw new DeltaTooLargeError(issue);
    }
    this.accountant = o.accountantFromHistory([]);
    this.accountingDelta = o.delta;
  }

  /** Load what was already spent on the dataset (by earlier jobs or runs). */
  async init(): Promise<this> {
    if (this.o.legacyKeys) await this.o.ledger.adopt(this.o.datasetId, this.o.legacyKeys);
    this.adopt(this.viewOf(await this.o.ledger.state(this.o.datasetId)));
    return this;
  }

  /** The dataset's recorded spend as an accountant, and the delta this job evaluates it at. */
  private viewOf(state: DatasetBudgetState): LedgerView {
    return {
      accountant: this.o.accountantFromHistory(state.history),
      delta: Math.min(this.o.delta, state.delta ?? this.o.delta),
    };
  }

  private adopt(view: LedgerView): void {
    this.accountant = view.accountant;
    this.accountingDelta = view.delta;
  }

  /** The delta epsilon is evaluated at: min(the job's delta, the dataset's accounting delta). */
  get delta(): number {
    return this.accountingDelta;
  }

  get steps(): number {
    return this.stepsTaken;
  }

  /**
   * This job's epsilon: the dataset's whole recorded spend as of this job's last step (other jobs'
   * steps recorded before it included, in full), at the delta that step was checked at; never above
   * the limit once a step was taken. Before the first step: the dataset's spend as last read. Steps
   * other jobs record after this job's last step are not in it (they are checked against their own
   * targets, over everything this job recorded); the dataset's current spend is the ledger's state.
   */
  spentEpsilon(): number {
    return this.accountant.getEpsilon(this.accountingDelta);
  }

  /** Epsilon after `steps` more steps at this sample rate (nothing recorded). */
  epsilonAfter(sampleRate: number, steps: number): number {
    return this.after(this.view(), sampleRate, steps);
  }

  /** The most steps at this sample rate the budget still allows (capped at `max`; nothing recorded). */
  affordableSteps(sampleRate: number, max: number): number {
    return this.affordable(this.view(), sampleRate, max);
  }

  private view(): LedgerView {
    return { accountant: this.accountant, delta: this.accountingDelta };
  }

  private after(view: LedgerView, sampleRate: number, steps: number): number {
    return view.accountant.epsilonAfter(
      { noiseMultiplier: this.o.noiseMultiplier, sampleRate, steps },
      view.delta,
    );
  }

  private affordable(view: LedgerView, sampleRate: number, max: number): number {
    return largestFitting(max, (k) => this.after(view, sampleRate, k) <= this.limit);
  }

  /**
   * Throws (or rejects with) PrivacyBudgetExhaustedError when the next step would exceed the limit;
   * else records it. Synchronous while the current ledger reservation lasts (the common case, once
   * per training step); a Promise only when it must write a new reservation first.
   */
  beforeStep(sampleRate: number): void | Promise<void> {
    if (
      !this.reservation ||
      this.reservation.used === this.reservation.steps ||
      this.reservation.sampleRate !== sampleRate
    ) {
      return this.settle()
        .then(() => this.reserve(sampleRate))
        .then(() => this.takeStep(sampleRate));
    }
    this.takeStep(sampleRate);
  }

  private takeStep(sampleRate: number): void {
    const sigma = this.o.noiseMultiplier;
    const next = this.epsilonAfter(sampleRate, 1);
    if (!(next <= this.limit)) {
      throw new PrivacyBudgetExhaustedError(this.spentEpsilon(), next, this.limit);
    }
    this.accountant.step(sigma, sampleRate, 1);
    this.reservation!.used++;
    this.stepsTaken++;
  }

  /** Reserve the most of `chunk` steps that fit, for this guard's own steps. */
  private async reserve(sampleRate: number): Promise<void> {
    const res = await this.reserveFitting(sampleRate, this.o.reserveChunk ?? 64);
    this.reservation = { id: res.id, steps: res.steps, used: 0, sampleRate };
  }

  /**
   * Reserve, in one ledger row and under the dataset's lock, the most of `steps` steps the budget
   * allows, for a task that runs elsewhere (an isolated runtime) on a ReservedLedger. The row stays
   * `reserved` until the caller settles it; see docs/runtime.md for what a task is charged.
   */
  async reserveForTask(sampleRate: number, steps: number): Promise<StepReservation & { id: string }> {
    const res = await this.reserveFitting(sampleRate, steps);
    return {
      id: res.id,
      datasetId: this.o.datasetId,
      jobId: this.o.jobId,
      noiseMultiplier: this.o.noiseMultiplier,
      sampleRate,
      delta: this.o.delta,
      steps: res.steps,
      before: res.before,
    };
  }

  /**
   * Largest k <= max with epsilon(history + k steps) <= limit, reserved in the ledger under the
   * dataset's lock (PrivacyBudgetExhaustedError when none fits). The state read under the lock
   * becomes this job's view only when a step is reserved on it: a refusal caused by what other jobs
   * spent since leaves this job's epsilon at its last step (docs/privacy.md).
   */
  private async reserveFitting(
    sampleRate: number,
    max: number,
  ): Promise<{ id: string; steps: number; before: DatasetBudgetState }> {
    let before: DatasetBudgetState = { history: [], delta: null };
    let seen!: LedgerView;
    const res = await this.o.ledger.reserve(
      this.o.datasetId,
      this.o.jobId,
      { noiseMultiplier: this.o.noiseMultiplier, sampleRate, delta: this.o.delta },
      (_history, state) => {
        before = state;
        return this.affordable((seen = this.viewOf(state)), sampleRate, max);
      },
    );
    if (res.steps === 0) {
      if (this.stepsTaken === 0) this.adopt(seen);
      throw new PrivacyBudgetExhaustedError(
        seen.accountant.getEpsilon(seen.delta),
        this.after(seen, sampleRate, 1),
        this.limit,
      );
    }
    this.adopt(seen);
    return { id: res.id, steps: res.steps, before };
  }

  /** Release the unused part of the current reservation (call when training ends, cleanly or not). */
  async settle(): Promise<void> {
    if (this.reservation && this.reservation.id)
      await this.o.ledger.settle(this.reservation.id, this.reservation.used);
    this.reservation = null;
  }
}

/** Largest k in [0, max] with fits(k), for fits monotone (true up to some k, false after). */
function largestFitting(max: number, fits: (k: number) => boolean): number {
  if (max <= 0 || !fits(1)) return 0;
  if (fits(max)) return max;
  let lo = 1;
  let hi = max; // fits(lo) && !fits(hi): epsilon is monotone in steps
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}
