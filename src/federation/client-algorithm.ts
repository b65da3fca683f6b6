import type { Parameter } from "../model/parameter.js";
import { tensor, type TensorMap } from "../tensor/tensor.js";
import type { TrainTask } from "./task.js";

/**
 * The client side of a strategy: a correction applied to each (already privatised) gradient,
 * and what to send back besides the weights. Both are post-processing, so DP is unaffected.
 */
export interface ClientAlgorithm {
  gradientHook?: (params: readonly Parameter[]) => void;
  finish(
    weights: TensorMap,
    steps: number,
    lr: number,
  ): { clientControl: TensorMap; delta: TensorMap } | null;
}

export function clientAlgorithmFor(task: TrainTask, clientControl: TensorMap | undefined): ClientAlgorithm {
  switch (task.job.strategy) {
    case "FED_PROX": {
      // ∇(μ/2 ‖w − w_global‖²) = μ (w − w_global)
      const mu = task.job.proximal_mu;
      const global = task.global;
      return {
        gradientHook:
          mu > 0
            ? (params) => {
                for (const p of params) {
                  const g = global.get(p.name)!.data;
                  for (let i = 0; i < p.grad.length; i++) p.grad[i] += mu * (p.data[i] - g[i]);
                }
              }
            : undefined,
        finish: () => null,
      };
    }
    case "SCAFFOLD": {
      // Karimireddy et al. 2020, option II: y ← y − η (g − c_i + c); c_i⁺ = c_i − c + (x − y)/(K η).
      const c = task.serverControl;
      const ci = clientControl;
      return {
        gradientHook: (params) => {
          for (const p of params) {
            const cp = c?.get(p.name)?.data;
            const cip = ci?.get(p.name)?.data;
            for (let i = 0; i < p.grad.length; i++) p.grad[i] += (cp ? cp[i] : 0) - (cip ? cip[i] : 0);
          }
        },
        finish: (weights, steps, lr) => {
          const next: TensorMap = new Map();
          const delta: TensorMap = new Map();
          for (const [name, y] of weights) {
            const x = task.global.get(name)!.data;
            const cp = c?.get(name)?.data;
            const cip = ci?.get(name)?.data;
            const n = new Float32Array(y.data.length);
            const d = new Float32Array(y.data.length);
            for (let i = 0; i < n.length; i++) {
              const old = cip ? cip[i] : 0;
              n[i] = steps > 0 ? old - (cp ? cp[i] : 0) + (x[i] - y.data[i]) / (steps * lr) : old;
              d[i] = n[i] - old;
            }
            next.set(name, tensor(y.shape, n));
            delta.set(name, tensor(y.shape, d));
          }
          return { clientControl: next, delta };
        },
      };
    }
    default:
      return { finish: () => null };
  }
}
