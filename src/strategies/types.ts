import type { TensorMap } from "../tensor/tensor.js";

/** What one client sends back after local training in a round. */
export interface ClientUpdate {
  readonly clientId: string;
  /** The client's locally trained model y_i (full weights, not a delta), laid out like the global model. */
  readonly weights: TensorMap;
  /** Local training examples: the FedAvg weight. A positive safe integer. */
  readonly numExamples: number;
  /** SCAFFOLD only: Δc_i = c_i⁺ − c_i, laid out like the global model. */
  readonly controlDelta?: TensorMap;
  /** Whitelisted numeric metrics (e.g. train_loss); averaged by numExamples into the round result. */
  readonly metrics?: Readonly<Record<string, number>>;
}

export interface RoundContext {
  /** Round number: a non-negative integer, strictly increasing across a strategy's rounds. */
  readonly round: number;
  /** The global model x sent to the clients this round. Never mutated by a strategy. */
  readonly global: TensorMap;
}

/** What the coordinator sends to clients along with the global model, per strategy. */
export interface ClientBroadcast {
  /** FedProx: μ of the proximal term μ/2·‖w − x‖². */
  readonly proximalMu?: number;
  /** SCAFFOLD: the server control variate c. */
  readonly controlVariate?: TensorMap;
}

/** The DP parameters of one DP-FedAvg round, for the privacy accountant. */
export interface DpRoundAccounting {
  /** z: noise std on the clipped sum is z·C. */
  readonly noiseMultiplier: number;
  /** q: the probability with which each client was sampled into the round. */
  readonly samplingRate: number;
  /** C: L2 bound on each client's update. */
  readonly clipNorm: number;
  /** qN: the fixed denominator of the average. */
  readonly expectedClients: number;
}

export interface RoundResult {
  readonly round: number;
  /** The new global model (fresh tensors; the round's input is untouched). */
  readonly global: TensorMap;
  /** Ids of the clients whose updates were aggregated, in arrival order. */
  readonly clients: readonly string[];
  readonly totalExamples: number;
  /** numExamples-weighted mean of each reported metric over the clients that reported it. */
  readonly metrics: Record<string, number>;
  /** SCAFFOLD: the new server control variate c, to broadcast next round. */
  readonly controlVariate?: TensorMap;
  /** Krum / Multi-Krum: the clients whose updates were selected. */
  readonly selectedClients?: readonly string[];
  /** DP-FedAvg: what the accountant must be told about this round. */
  readonly privacy?: DpRoundAccounting;
}

/** One round in progress: updates are folded in as they arrive, then `finish` yields the new model. */
export interface RoundAggregator {
  readonly round: number;
  /** What clients need besides the global model this round. */
  readonly broadcast: ClientBroadcast;
  /** Updates accepted so far. */
  readonly count: number;
  /**
   * Validate and fold in one client's update. Throws AggregationError (the update is then ignored
   * and the round continues) on a malformed, non-finite or duplicate update.
   */
  add(update: ClientUpdate): void;
  /** Compute the new global model and commit any strategy state. Callable once. */
  finish(): RoundResult;
}

export type StrategyName =
  | "FED_AVG"
  | "FED_PROX"
  | "SCAFFOLD"
  | "FED_ADAM"
  | "FED_YOGI"
  | "MEDIAN"
  | "TRIMMED_MEAN"
  | "KRUM"
  | "MULTI_KRUM"
  | "DP_FED_AVG";

/** Server state that must survive a coordinator restart (optimizer moments, control variates). */
export interface StrategyState {
  /** The last round whose result was committed. */
  readonly round: number;
  /** Named state tensors, e.g. `m/<param>` or `c/<param>`: checkpointable as safetensors. */
  readonly tensors: TensorMap;
}

export interface Strategy {
  readonly name: StrategyName;
  /**
   * True when memory is O(model) whatever the number of clients; false for the robust rules,
   * which must hold every update of the round until `finish`.
   */
  readonly streaming: boolean;
  begin(round: RoundContext): RoundAggregator;
  /** Copy of the cross-round state: the last committed round and any state tensors. */
  exportState(): StrategyState;
  /** Resume from an exported state (e.g. after a restart); validated before use. */
  restoreState(state: StrategyState): void;
}
