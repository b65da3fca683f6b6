/**
 * Client-level differential privacy (privacy.mechanism "DP_FEDAVG"), the coordinator's side:
 * Poisson client sampling, the DP-FedAvg aggregate (clipped client deltas, Gaussian noise on the
 * sum, fixed denominator), and a job-level budget in the coordinator's persistent ledger. Each
 * round is one step of the sampled Gaussian mechanism at (σ = z, q), accounted by the same
 * accountant as DP-SGD; a round that would pass the target or the hard ceiling is never released.
 */
import { ValidationError } from "../errors.js";
import {
  computeEpsilon,
  createAccountant,
  getNoiseMultiplier,
  type AccountantName,
} from "../privacy/accountant/index.js";
import type { BudgetLedger } from "../privacy/budget-ledger.js";
import { PrivacyBudgetExhaustedError, PrivacyGuard } from "../privacy/guard.js";
import { CryptoRandom, type RandomSource } from "../random.js";
import type { FederationJob } from "../schemas/federation.js";
import type { Kernels } from "../tensor/kernels.js";
import type { TensorMap } from "../tensor/tensor.js";
import { DpFedAvg, sampleClients } from "../strategies/dp-fedavg.js";
import type { RoundAggregator, RoundContext, Strategy, StrategyState } from "../strategies/types.js";
import { CoordinatorError } from "./errors.js";
import type { Invitation, JobEnd, RoundPolicy } from "./round-policy.js";

/** q when a DP_FEDAVG job gives no client_sampling_rate: every client joins every round. */
export const DEFAULT_CLIENT_SAMPLING_RATE = 1;

/**
 * Stands in for "nobody contributed": a zero delta (the global model itself) adds nothing to the
 * sum, so the round still releases x + noise/(qN), exactly the mechanism the accountant charged.
 * Skipping the release instead would reveal that the sample was empty.
 */
export const EMPTY_ROUND_CLIENT_ID = "(dp-fedavg: empty sample)";

export function clientSamplingRate(job: FederationJob): number {
  return job.privacy.client_sampling_rate ?? DEFAULT_CLIENT_SAMPLING_RATE;
}

/**
 * The coordinator ledger's key for one client's client-level budget. Client-level DP protects each
 * client's whole data, so the budget belongs to the client (its authenticated id in the project),
 * not to a job's `dataset_id`, which any job file may choose: every job a client takes part in is
 * charged to it, whatever the job calls its data and whoever else is in the population.
 */
export function clientLevelBudgetKey(clientId: string): string {
  return `dp-fedavg:client:${clientId}`;
}

/** Where builds before per-client keys kept the budget: per job `dataset_id` (inherited once). */
export function legacyClientLevelBudgetKey(datasetId: string): string {
  return `dp-fedavg:${datasetId}`;
}

/** A DP_FEDAVG job must aggregate by (proximal) averaging: SCAFFOLD's control variates would leave un-noised. */
export function assertClientLevelJob(job: FederationJob): void {
  const issues = [];
  if (job.privacy.mechanism !== "DP_FEDAVG")
    issues.push({ path: "privacy.mechanism", rule: 'must be "DP_FEDAVG" for client-level DP' });
  if (job.strategy !== "FED_AVG" && job.strategy !== "FED_PROX")
    issues.push({
      path: "strategy",
      rule: 'must be FED_AVG or FED_PROX with privacy.mechanism "DP_FEDAVG" (SCAFFOLD control variates are not privatised)',
    });
  if (issues.length > 0) throw new ValidationError("FederationJob", issues);
}

export interface ClientLevelBudgetQuery {
  rounds: number;
  samplingRate: number;
  delta: number;
  accountant?: AccountantName;
}

/** Epsilon of `rounds` DP-FedAvg rounds at (z, q): one sampled-Gaussian step per round. */
export function clientLevelEpsilon(q: ClientLevelBudgetQuery & { noiseMultiplier: number }): number {
  return computeEpsilon({
    accountant: q.accountant ?? "rdp",
    noiseMultiplier: q.noiseMultiplier,
    sampleRate: q.samplingRate,
    steps: q.rounds,
    delta: q.delta,
  }).epsilon;
}

/** The server noise multiplier z whose `rounds` rounds at q reach at most the target. */
export function calibrateClientNoise(q: ClientLevelBudgetQuery & { targetEpsilon: number }): number {
  // q = 0 would make every z meet the target and the search never end.
  if (!(q.samplingRate > 0 && q.samplingRate <= 1))
    throw new ValidationError("client-level noise calibration", [
      { path: "client_sampling_rate", rule: "must be in (0, 1]" },
    ]);
  return getNoiseMultiplier({
    accountant: q.accountant ?? "rdp",
    targetEpsilon: q.targetEpsilon,
    delta: q.delta,
    sampleRate: q.samplingRate,
    steps: q.rounds,
  });
}

/** What a round record says about client-level privacy. */
export interface ClientLevelRoundPrivacy {
  mechanism: "DP_FEDAVG";
  /** The guarantee is per client (a whole site's data), not per example. */
  level: "client";
  /** Epsilon spent on the dataset's client-level budget after this round. */
  epsilon: number;
  delta: number;
  noise_multiplier: number;
  sampling_rate: number;
  clip_norm: number;
  /** Clients Poisson-sampled into this round (before attestation and failures). */
  sampled: number;
}

/** The job's client-level privacy at its end. */
export interface ClientLevelPrivacyReport extends Omit<ClientLevelRoundPrivacy, "sampled"> {
  target_epsilon: number;
  /** min(target_epsilon, the hard ceiling). */
  limit: number;
  /** Rounds this job released (each charged one accountant step to every client of the population). */
  rounds_accounted: number;
  /** The ledger keys charged: one per client of the job (`clientLevelBudgetKey`). */
  ledger_keys: string[];
}

export interface ClientLevelDpOptions {
  job: FederationJob;
  /** The coordinator's persistent budget ledger. */
  ledger: BudgetLedger;
  accountant?: AccountantName;
  /** Gaussian noise on the aggregate: the OS CSPRNG by default. */
  noise?: RandomSource;
  /** Poisson client sampling: the OS CSPRNG by default. */
  sampling?: RandomSource;
  /** Let seeded (non-cryptographic) sources through: reproducible simulations and tests only. */
  allowInsecureRandom?: boolean;
  /** η of x ← x + η·(noised mean update). */
  serverLr?: number;
  kernels?: Kernels;
}

/**
 * The coordinator's client-level DP for one job, as a Strategy wrapper: it aggregates with its
 * DpFedAvg (`inner`) and brings the round policy of the mechanism (Poisson sampling, the job's
 * client-level budget charged before each release, min_clients over the clients able to
 * continue), so runFederation has no separate path for DP_FEDAVG.
 */
export class ClientLevelDp implements Strategy {
  readonly inner: DpFedAvg;
  readonly ledgerKeys: string[];
  readonly roundPolicy: RoundPolicy;
  private rounds = 0;

  private constructor(
    private readonly job: FederationJob,
    inner: DpFedAvg,
    /** One per client of the population, in the job's order. */
    private readonly guards: PrivacyGuard[],
    private readonly sampling: RandomSource,
  ) {
    this.inner = inner;
    this.ledgerKeys = job.clients.map(clientLevelBudgetKey);
    this.roundPolicy = clientLevelRounds(this);
  }

  get name(): DpFedAvg["name"] {
    return this.inner.name;
  }

  get streaming(): boolean {
    return this.inner.streaming;
  }

  begin(round: RoundContext): RoundAggregator {
    return this.inner.begin(round);
  }

  exportState(): StrategyState {
    return this.inner.exportState();
  }

  restoreState(state: StrategyState): void {
    this.inner.restoreState(state);
  }

  static async open(o: ClientLevelDpOptions): Promise<ClientLevelDp> {
    assertClientLevelJob(o.job);
    const p = o.job.privacy;
    const sampling = o.sampling ?? new CryptoRandom();
    if (!sampling.secure && !o.allowInsecureRandom) {
      throw new CoordinatorError(
        "INSECURE_RANDOM",
        "client sampling needs a cryptographic random source (allowInsecureRandom is for simulations only)",
      );
    }
    const strategy = new DpFedAvg(
      {
        clipNorm: p.max_grad_norm,
        noiseMultiplier: p.noise_multiplier,
        samplingRate: clientSamplingRate(o.job),
        totalClients: o.job.clients.length,
        serverLr: o.serverLr,
        allowInsecureRandom: o.allowInsecureRandom ?? false,
      },
      { rng: o.noise, kernels: o.kernels },
    );
    const accountant = o.accountant ?? "rdp";
    const guards: PrivacyGuard[] = [];
    for (const client of o.job.clients) {
      const key = clientLevelBudgetKey(client);
      await o.ledger.inherit(key, legacyClientLevelBudgetKey(o.job.dataset_id));
      guards.push(
        await new PrivacyGuard({
          ledger: o.ledger,
          datasetId: key,
          jobId: o.job.job_id,
          targetEpsilon: p.target_epsilon,
          delta: p.delta,
          noiseMultiplier: p.noise_multiplier,
          accountantFromHistory: (h) => createAccountant(accountant, h),
          // One step per round: reserve exactly the round about to be released.
          reserveChunk: 1,
        }).init(),
      );
    }
    return new ClientLevelDp(o.job, strategy, guards, sampling);
  }

  get samplingRate(): number {
    return this.inner.samplingRate;
  }

  get limit(): number {
    return this.guards[0].limit;
  }

  /**
   * The job's client-level epsilon: the most any client of its population has spent (all jobs it
   * took part in, this one included). Every client's guarantee is at least this good.
   */
  spentEpsilon(): number {
    return Math.max(...this.guards.map((g) => g.spentEpsilon()));
  }

  /** The job's client-level epsilon after one more round (nothing recorded). */
  nextEpsilon(): number {
    return Math.max(...this.guards.map((g) => g.epsilonAfter(this.samplingRate, 1)));
  }

  /** Why the next round may not run, or null when it fits the budget. */
  refusal(): string | null {
    const next = this.nextEpsilon();
    if (next <= this.limit) return null;
    return `the next round would reach client-level epsilon ${next.toFixed(4)} > limit ${this.limit} (spent ${this.spentEpsilon().toFixed(4)})`;
  }

  /** Poisson sampling over the whole population, each id with probability q. */
  sample(ids: readonly string[]): string[] {
    return sampleClients(ids, this.samplingRate, this.sampling);
  }

  /**
   * Write-ahead: charge this round in the ledger before its noised aggregate exists. Throws
   * PrivacyBudgetExhaustedError (nothing released) when it no longer fits, e.g. because another
   * job spent a client's budget meanwhile. Every client of the population is charged, sampled or
   * not (the accountant's q covers the sampling); a refusal part-way leaves the charges already
   * written in place (over-counting, never under-counting). Fills an empty round (see
   * EMPTY_ROUND_CLIENT_ID).
   */
  async chargeRound(aggregation: RoundAggregator, global: TensorMap): Promise<void> {
    for (const g of this.guards) await g.beforeStep(this.samplingRate);
    this.rounds++;
    if (aggregation.count === 0) {
      aggregation.add({ clientId: EMPTY_ROUND_CLIENT_ID, weights: global, numExamples: 1 });
    }
  }

  /** Settle the ledger once the round is released (or abandoned: the charge then stays). */
  async settle(): Promise<void> {
    for (const g of this.guards) await g.settle();
  }

  roundPrivacy(sampled: number): ClientLevelRoundPrivacy {
    return { ...this.base(), sampled };
  }

  report(): ClientLevelPrivacyReport {
    return {
      ...this.base(),
      target_epsilon: this.job.privacy.target_epsilon,
      limit: this.limit,
      rounds_accounted: this.rounds,
      ledger_keys: [...this.ledgerKeys],
    };
  }

  private base(): Omit<ClientLevelRoundPrivacy, "sampled"> {
    return {
      mechanism: "DP_FEDAVG",
      level: "client",
      epsilon: this.spentEpsilon(),
      delta: this.job.privacy.delta,
      noise_multiplier: this.inner.noiseMultiplier,
      sampling_rate: this.samplingRate,
      clip_norm: this.inner.clipNorm,
    };
  }
}

/**
 * DP_FEDAVG's rounds. Each samples clients with q and runs only if one more round fits the
 * client-level budget (else the job ends "privacy_budget_exhausted"). min_clients counts the
 * clients still able to take part, not a round's sample: refusing small samples would change the
 * mechanism the accountant charges. The charge is written before the noised aggregate exists.
 */
function clientLevelRounds(dp: ClientLevelDp): RoundPolicy {
  const tooFew = (round: number, able: number, minClients: number, what = ""): JobEnd => ({
    end: "insufficient_clients",
    reason: `round ${round}: ${what}${able} client(s) can continue, fewer than min_clients ${minClients}`,
  });
  return {
    select(round, population, able, minClients): Invitation | JobEnd {
      const refusal = dp.refusal();
      if (refusal) return { end: "privacy_budget_exhausted", reason: `round ${round}: ${refusal}` };
      if (able < minClients) return tooFew(round, able, minClients);
      return { sampled: new Set(dp.sample(population)) };
    },
    afterAdmission: () => null,
    // Nothing to release and no next round: end without spending budget on pure noise.
    afterCollection: (round, contributors, able, minClients) =>
      contributors === 0 && able < minClients
        ? tooFew(round, able, minClients, "no update arrived and ")
        : null,
    async release(round, aggregation, global) {
      try {
        await dp.chargeRound(aggregation, global);
      } catch (err) {
        await dp.settle();
        if (err instanceof PrivacyBudgetExhaustedError)
          return { end: "privacy_budget_exhausted", reason: `round ${round}: ${err.message}` };
        throw err;
      }
      try {
        return aggregation.finish().global;
      } finally {
        await dp.settle();
      }
    },
    clientEpsilon: () => dp.spentEpsilon(),
    roundPrivacy: (invitation) => dp.roundPrivacy(invitation.sampled?.size ?? 0),
    jobPrivacy: () => dp.report(),
  };
}

/**
 * The coordinator refuses a mismatched setup rather than run a job under a mechanism it did not
 * ask for: DP_FEDAVG needs its ClientLevelDp as the strategy; DP_SGD must not have one.
 */
export function assertMechanismWiring(job: FederationJob, strategy: Strategy): void {
  if (job.privacy.mechanism === "DP_FEDAVG") {
    if (!(strategy instanceof ClientLevelDp)) {
      throw new CoordinatorError(
        "PRIVACY_MECHANISM_MISMATCH",
        "a DP_FEDAVG job must run with its client-level DP (a ClientLevelDp) as the strategy",
      );
    }
  } else if (strategy instanceof ClientLevelDp) {
    throw new CoordinatorError(
      "PRIVACY_MECHANISM_MISMATCH",
      `client-level DP was supplied for a ${job.privacy.mechanism} job`,
    );
  }
}
