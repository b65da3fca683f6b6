import type { MetricName } from "../airlock/airlock.js";
import type { FederationJob } from "../schemas/federation.js";
import type { ModelSpec } from "../schemas/model.js";
import type { TensorMap } from "../tensor/tensor.js";

/** Local training settings the coordinator sends with each round. */
export interface LocalTrainingPlan {
  epochs: number;
  batchSize: number;
  learningRate: number;
  momentum: number;
}

/** One round's work for one agent. */
export interface TrainTask {
  job: FederationJob;
  round: number;
  model: ModelSpec;
  global: TensorMap;
  /** SCAFFOLD's server control variate c. */
  serverControl?: TensorMap;
  plan: LocalTrainingPlan;
}

export type TaskStatus = "ok" | "budget_exhausted";

/** What comes back through the Airlock: model-shaped tensors and whitelisted numbers only. */
export interface TaskOutcome {
  clientId: string;
  status: TaskStatus;
  weights: TensorMap;
  /** SCAFFOLD's Δc_i. */
  controlDelta?: TensorMap;
  numExamples: number;
  metrics: Partial<Record<MetricName, number>>;
  /** Count of items the Airlock dropped (the drops themselves are audited at the agent). */
  dropped: number;
}

/** The agent's answer to "could you afford one more round?". Numbers only. */
export interface BudgetProbe {
  epsilon: number;
  nextEpsilon: number;
  limit: number;
  examples: number;
}

/**
 * The local training plan when nobody says otherwise (`enclave simulate` and the coordinator's
 * job runner): 1 epoch at batch 16, lr 0.05, momentum 0.9 (0 for SCAFFOLD, whose control update
 * assumes plain SGD).
 */
export function defaultPlan(strategy: string): LocalTrainingPlan {
  return { epochs: 1, batchSize: 16, learningRate: 0.05, momentum: strategy === "SCAFFOLD" ? 0 : 0.9 };
}
