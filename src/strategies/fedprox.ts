import { z } from "zod";
import { parseContract } from "../schemas/contract.js";
import { assertSameLayout, squaredDistance } from "../tensor/tensor-math.js";
import type { TensorMap } from "../tensor/tensor.js";
import { MeanRound } from "./fedavg.js";
import { StrategyBase, Weighting } from "./strategy-base.js";
import { matchParameters, requireNonNegative, type GradientHook, type TrainableTensor } from "./trainable.js";
import type { RoundAggregator, RoundContext } from "./types.js";

export const FedProxOptions = z
  .object({
    mu: z.number().min(0, "must be >= 0").finite("must be finite"),
    weighting: Weighting.default("examples"),
  })
  .strict();
export type FedProxOptions = z.input<typeof FedProxOptions>;

/**
 * FedProx (Li et al. 2020). The server side is FedAvg; the difference is on the client, which
 * minimises F_i(w) + μ/2·‖w − x‖² (see proximalGradient). μ is broadcast with the global model.
 */
export class FedProx extends StrategyBase {
  readonly name = "FED_PROX" as const;
  readonly streaming = true;
  readonly mu: number;
  readonly weighting: Weighting;

  constructor(options: FedProxOptions) {
    super();
    const o = parseContract(FedProxOptions, options, "FedProx options");
    this.mu = o.mu;
    this.weighting = o.weighting;
  }

  protected openRound(ctx: RoundContext, generation: number): RoundAggregator {
    return new MeanRound(ctx, this.sequencer, generation, this.weighting, { proximalMu: this.mu });
  }
}

/** The proximal term μ/2·‖w − x‖² (add it to the reported local loss). */
export function proximalLoss(weights: TensorMap, global: TensorMap, mu: number): number {
  requireNonNegative(mu, "mu");
  return 0.5 * mu * squaredDistance(weights, global);
}

/**
 * grad ← grad + μ·(w − x): the gradient of the proximal term, in place on `grad` (returned).
 * Layouts of the three maps are checked on every call.
 */
export function proximalGradient(
  grad: TensorMap,
  weights: TensorMap,
  global: TensorMap,
  mu: number,
): TensorMap {
  requireNonNegative(mu, "mu");
  assertSameLayout(global, weights, "proximalGradient weights");
  assertSameLayout(global, grad, "proximalGradient grad");
  for (const [name, g] of grad) {
    const gd = g.data;
    const wd = weights.get(name)!.data;
    const xd = global.get(name)!.data;
    for (let i = 0; i < gd.length; i++) gd[i] += mu * (wd[i] - xd[i]);
  }
  return grad;
}

/**
 * The same correction as a trainer `gradientHook`: each step, p.grad += μ·(p.data − x) for every
 * parameter. `global` is the round's global model x (kept by reference: do not mutate it while
 * training). Parameter names and sizes are matched against it on the first call.
 */
export function fedProxGradientHook(global: TensorMap, mu: number): GradientHook {
  requireNonNegative(mu, "mu");
  let matched: Float32Array[] | null = null;
  let matchedFor: readonly TrainableTensor[] | null = null;
  return (params) => {
    if (matchedFor !== params) {
      matched = matchParameters(params, global, "fedProxGradientHook");
      matchedFor = params;
    }
    for (let k = 0; k < params.length; k++) {
      const gd = params[k].grad;
      const wd = params[k].data;
      const xd = matched![k];
      for (let i = 0; i < gd.length; i++) gd[i] += mu * (wd[i] - xd[i]);
    }
  };
}
