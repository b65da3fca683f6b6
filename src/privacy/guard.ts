import { EnclaveError } from "../errors.js";
import { EPSILON_HARD_CEILING } from "../schemas/privacy.js";
import type { BudgetLedger, BudgetSegment } from "./budget-ledger.js";

/** What the guard needs of an accountant: epsilon now, and epsilon if more steps were taken. */
export interface GuardAccountant {
  step(noiseMultiplier: number, sampleRate: number, count?: number): void;
  getEpsilon(delta: number): number;
  epsilonAfter(next: BudgetSegment, delta: number): number;
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

export interface PrivacyGuardOptions {
  ledger: BudgetLedger;
  datasetId: string;
  jobId: string;
  targetEpsilon: number;
  delta: number;
  noiseMultiplier: number;
  accountantFromHistory: AccountantFromHistory;
  /** Steps reserved per ledger write; larger means fewer writes, smaller means less over-count on a crash. */
  reserveChunk?: number;
}

/**
 * The Privacy Guard: before every step it computes the epsilon that step would reach, over
 * everything already spent on the dataset, and refuses the step if that passes the job's target
 * or the hard ceiling. Steps are reserved in the persistent ledger before they are taken.
 */
export class PrivacyGuard {
  readonly limit: number;
  private accountant: GuardAccountant;
  private reservation: { id: string; steps: number; used: number; sampleRate: number } | null = null;
  private stepsTaken = 0;

  constructor(private readonly o: PrivacyGuardOptions) {
    this.limit = Math.min(o.targetEpsilon, EPSILON_HARD_CEILING);
    this.accountant = o.accountantFromHistory([]);
  }

  /** Load what was already spent on the dataset (by earlier jobs or runs). */
  async init(): Promise<this> {
    this.accountant = this.o.accountantFromHistory(await this.o.ledger.history(this.o.datasetId));
    return this;
  }

  get steps(): number {
    return this.stepsTaken;
  }

  spentEpsilon(): number {
    return this.accountant.getEpsilon(this.o.delta);
  }

  /** Epsilon after `steps` more steps at this sample rate (nothing recorded). */
  epsilonAfter(sampleRate: number, steps: number): number {
    return this.accountant.epsilonAfter(
      { noiseMultiplier: this.o.noiseMultiplier, sampleRate, steps },
      this.o.delta,
    );
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
    const next = this.accountant.epsilonAfter({ noiseMultiplier: sigma, sampleRate, steps: 1 }, this.o.delta);
    if (!(next <= this.limit)) {
      throw new PrivacyBudgetExhaustedError(this.spentEpsilon(), next, this.limit);
    }
    this.accountant.step(sigma, sampleRate, 1);
    this.reservation!.used++;
    this.stepsTaken++;
  }

  /** Largest k <= chunk with epsilon(history + k steps) <= limit; reserved in the ledger under a lock. */
  private async reserve(sampleRate: number): Promise<void> {
    const sigma = this.o.noiseMultiplier;
    const chunk = this.o.reserveChunk ?? 64;
    let accountant = this.accountant;
    const res = await this.o.ledger.reserve(
      this.o.datasetId,
      this.o.jobId,
      { noiseMultiplier: sigma, sampleRate },
      (history) => {
        accountant = this.o.accountantFromHistory(history);
        const fits = (k: number) =>
          accountant.epsilonAfter({ noiseMultiplier: sigma, sampleRate, steps: k }, this.o.delta) <=
          this.limit;
        if (!fits(1)) return 0;
        if (fits(chunk)) return chunk;
        let lo = 1;
        let hi = chunk; // fits(lo) && !fits(hi): epsilon is monotone in steps
        while (hi - lo > 1) {
          const mid = (lo + hi) >> 1;
          if (fits(mid)) lo = mid;
          else hi = mid;
        }
        return lo;
      },
    );
    this.accountant = accountant;
    if (res.steps === 0) {
      const next = accountant.epsilonAfter({ noiseMultiplier: sigma, sampleRate, steps: 1 }, this.o.delta);
      throw new PrivacyBudgetExhaustedError(accountant.getEpsilon(this.o.delta), next, this.limit);
    }
    this.reservation = { id: res.id, steps: res.steps, used: 0, sampleRate };
  }

  /** Release the unused part of the current reservation (call when training ends, cleanly or not). */
  async settle(): Promise<void> {
    if (this.reservation && this.reservation.id)
      await this.o.ledger.settle(this.reservation.id, this.reservation.used);
    this.reservation = null;
  }
}
