import { assertFinite, assertWellFormed, TensorLayoutError } from "../tensor/tensor-math.js";
import type { TensorMap } from "../tensor/tensor.js";
import { AggregationError } from "./errors.js";
import type { ClientBroadcast, ClientUpdate, RoundAggregator, RoundContext, RoundResult } from "./types.js";
import { clientLabel, validateClientId, validateUpdate } from "./update-validation.js";

/**
 * Orders a strategy's rounds: round numbers strictly increase, and only the most recently begun
 * round may commit, so a stale aggregator can never overwrite newer server state.
 */
export class RoundSequencer {
  private lastCommitted = -1;
  private generation = 0;

  get lastRound(): number {
    return this.lastCommitted;
  }

  open(round: number): number {
    if (!Number.isSafeInteger(round) || round < 0) {
      throw new AggregationError("ROUND_OUT_OF_ORDER", "round must be a non-negative integer", {
        field: "round",
      });
    }
    if (round <= this.lastCommitted) {
      throw new AggregationError(
        "ROUND_OUT_OF_ORDER",
        `round ${round} is not after the last committed round ${this.lastCommitted}`,
        { field: "round" },
      );
    }
    return ++this.generation;
  }

  assertCurrent(round: number, generation: number): void {
    if (generation !== this.generation || round <= this.lastCommitted) {
      throw new AggregationError("ROUND_STALE", `round ${round} was superseded by a later begin()`);
    }
  }

  commit(round: number): void {
    this.lastCommitted = round;
  }

  restore(round: number): void {
    if (!Number.isSafeInteger(round) || round < -1) {
      throw new AggregationError("STATE_INVALID", "state round must be an integer >= -1", { field: "round" });
    }
    this.lastCommitted = round;
    this.generation++;
  }
}

/** The global model must be well-formed float32 and finite before anything is computed from it. */
export function validateGlobal(global: TensorMap): void {
  if (!(global instanceof Map) || global.size === 0) {
    throw new AggregationError("GLOBAL_INVALID", "global model must be a non-empty map of tensors", {
      field: "global",
    });
  }
  try {
    for (const [name, t] of global) assertWellFormed(t, name, "global model");
    assertFinite(global, "global model");
  } catch (err) {
    if (err instanceof TensorLayoutError) {
      throw new AggregationError("GLOBAL_INVALID", err.message, {
        field: "global",
        tensor: err.tensor,
        cause: err,
      });
    }
    throw err;
  }
}

/** What a concrete aggregator computes at the end; the base fills in round, clients and metrics. */
export type RoundOutcome = Omit<RoundResult, "round" | "clients" | "totalExamples" | "metrics">;

export interface RoundBaseOptions {
  needsControlDelta?: boolean;
  broadcast?: ClientBroadcast;
  /** DP-FedAvg reports no client metrics: they are outside its privacy guarantee. */
  reportMetrics?: boolean;
}

/**
 * Lifecycle shared by every strategy: validation before any accumulation, one update per client,
 * metric averaging, finish-once, and the stale-round check.
 */
export abstract class RoundBase implements RoundAggregator {
  readonly round: number;
  readonly broadcast: ClientBroadcast;
  protected readonly global: TensorMap;
  private readonly ids: string[] = [];
  private readonly idSet = new Set<string>();
  private examples = 0;
  private readonly metricSums = new Map<string, { sum: number; weight: number }>();
  private finished = false;
  private readonly needsControlDelta: boolean;
  private readonly reportMetrics: boolean;

  constructor(
    ctx: RoundContext,
    private readonly sequencer: RoundSequencer,
    private readonly generation: number,
    options: RoundBaseOptions = {},
  ) {
    this.round = ctx.round;
    this.global = ctx.global;
    this.broadcast = options.broadcast ?? {};
    this.needsControlDelta = options.needsControlDelta ?? false;
    this.reportMetrics = options.reportMetrics ?? true;
  }

  get count(): number {
    return this.ids.length;
  }

  add(update: ClientUpdate): void {
    if (this.finished)
      throw new AggregationError("ROUND_FINISHED", `round ${this.round} is already finished`);
    validateClientId(update);
    if (this.idSet.has(update.clientId)) {
      throw new AggregationError(
        "UPDATE_DUPLICATE_CLIENT",
        `client ${clientLabel(update.clientId)} already sent an update in round ${this.round}`,
        { clientId: update.clientId, field: "clientId" },
      );
    }
    validateUpdate(this.global, update, this.needsControlDelta);
    this.accept(update);
    this.idSet.add(update.clientId);
    this.ids.push(update.clientId);
    this.examples += update.numExamples;
    if (this.reportMetrics && update.metrics) {
      for (const [k, v] of Object.entries(update.metrics)) {
        const s = this.metricSums.get(k) ?? { sum: 0, weight: 0 };
        s.sum += v * update.numExamples;
        s.weight += update.numExamples;
        this.metricSums.set(k, s);
      }
    }
  }

  finish(): RoundResult {
    if (this.finished)
      throw new AggregationError("ROUND_FINISHED", `round ${this.round} is already finished`);
    this.sequencer.assertCurrent(this.round, this.generation);
    if (this.ids.length === 0)
      throw new AggregationError("NO_UPDATES", `round ${this.round} received no updates`);
    const outcome = this.complete();
    this.finished = true;
    this.sequencer.commit(this.round);
    const metrics: Record<string, number> = {};
    for (const [k, s] of this.metricSums) metrics[k] = s.sum / s.weight;
    return { round: this.round, clients: [...this.ids], totalExamples: this.examples, metrics, ...outcome };
  }

  /** Fold one validated update in. Must not throw: validation has already happened. */
  protected abstract accept(update: ClientUpdate): void;

  /**
   * Compute the result. May throw (e.g. TOO_FEW_UPDATES) as long as it commits no strategy state
   * before its last statement: the round can then be finished later.
   */
  protected abstract complete(): RoundOutcome;
}
