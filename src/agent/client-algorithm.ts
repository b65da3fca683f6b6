import type { Parameter } from "../model/parameter.js";
import type { TensorMap } from "../tensor/tensor.js";
import { fedProxGradientHook } from "../strategies/fedprox.js";
import {
  initialControlVariate,
  scaffoldControlUpdate,
  scaffoldGradientHook,
} from "../strategies/scaffold-client.js";
import type { TrainTask } from "../federation/task.js";

/**
 * The client side of a strategy: a correction applied to each (already privatised) gradient,
 * and what to send back besides the weights. Both are post-processing, so DP is unaffected.
 */
export interface ClientAlgorithm {
  gradientHook?: (params: readonly Parameter[]) => void;
  /** SCAFFOLD: the new client control variate and Δc_i after `steps` local steps at `lr`. */
  finish(
    weights: TensorMap,
    steps: number,
    lr: number,
  ): { clientControl: TensorMap; delta: TensorMap } | null;
}

export function clientAlgorithmFor(task: TrainTask, clientControl: TensorMap | undefined): ClientAlgorithm {
  switch (task.job.strategy) {
    case "FED_PROX":
      return {
        gradientHook:
          task.job.proximal_mu > 0 ? fedProxGradientHook(task.global, task.job.proximal_mu) : undefined,
        finish: () => null,
      };
    case "SCAFFOLD": {
      const c = task.serverControl ?? initialControlVariate(task.global);
      const ci = clientControl ?? initialControlVariate(task.global);
      return {
        gradientHook: scaffoldGradientHook(c, ci),
        finish: (weights, steps, lr) => {
          if (steps === 0) return null;
          const r = scaffoldControlUpdate(ci, c, task.global, weights, steps, lr);
          return { clientControl: r.controlVariate, delta: r.controlDelta };
        },
      };
    }
    default:
      return { finish: () => null };
  }
}
