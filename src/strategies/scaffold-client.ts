import { assertSameLayout } from "../tensor/tensor-math.js";
import { zerosLike, type TensorMap } from "../tensor/tensor.js";
import {
  matchParameters,
  requirePositive,
  StrategyArgumentError,
  type GradientHook,
  type TrainableTensor,
} from "./trainable.js";

/**
 * Client side of SCAFFOLD (Karimireddy et al. 2020, Algorithm 1, option II).
 * A client keeps its control variate c_i across rounds (zeros before its first round). Each round:
 *   1. every local step: g ← g − c_i + c                (scaffoldCorrectGradient / scaffoldGradientHook)
 *   2. after K local SGD steps of learning rate η_l from x to y:
 *        c_i⁺ = c_i − c + (x − y) / (K·η_l),  Δc_i = c_i⁺ − c_i   (scaffoldControlUpdate)
 *   3. send y and Δc_i; keep c_i⁺.
 * Option II assumes plain SGD with a constant η_l; K is the number of steps actually taken.
 */

/** The initial client (and server) control variate: zeros laid out like the model. */
export function initialControlVariate(global: TensorMap): TensorMap {
  return zerosLike(global);
}

/** grad ← grad − c_i + c, in place on `grad` (returned). */
export function scaffoldCorrectGradient(grad: TensorMap, c: TensorMap, ci: TensorMap): TensorMap {
  assertSameLayout(grad, c, "scaffoldCorrectGradient c");
  assertSameLayout(grad, ci, "scaffoldCorrectGradient c_i");
  for (const [name, g] of grad) {
    const gd = g.data;
    const cd = c.get(name)!.data;
    const cid = ci.get(name)!.data;
    for (let i = 0; i < gd.length; i++) gd[i] += cd[i] - cid[i];
  }
  return grad;
}

/**
 * The same correction as a trainer `gradientHook`. (c − c_i) is computed once per round, so each
 * step costs one addition per parameter.
 */
export function scaffoldGradientHook(c: TensorMap, ci: TensorMap): GradientHook {
  assertSameLayout(c, ci, "scaffoldGradientHook c_i");
  const correction: TensorMap = new Map();
  for (const [name, t] of c) {
    const cd = t.data;
    const cid = ci.get(name)!.data;
    const d = new Float32Array(cd.length);
    for (let i = 0; i < d.length; i++) d[i] = cd[i] - cid[i];
    correction.set(name, { shape: [...t.shape], data: d });
  }
  let matched: Float32Array[] | null = null;
  let matchedFor: readonly TrainableTensor[] | null = null;
  return (params) => {
    if (matchedFor !== params) {
      matched = matchParameters(params, correction, "scaffoldGradientHook");
      matchedFor = params;
    }
    for (let k = 0; k < params.length; k++) {
      const gd = params[k].grad;
      const dd = matched![k];
      for (let i = 0; i < gd.length; i++) gd[i] += dd[i];
    }
  };
}

export interface ScaffoldControlResult {
  /** c_i⁺: keep it for the next round. */
  controlVariate: TensorMap;
  /** Δc_i = c_i⁺ − c_i: send it with the weights (ClientUpdate.controlDelta). */
  controlDelta: TensorMap;
}

/**
 * Option II: c_i⁺ = c_i − c + (x − y)/(K·η_l) and Δc_i = c_i⁺ − c_i = (x − y)/(K·η_l) − c.
 * x: the round's global model, y: the locally trained model, K ≥ 1 local steps taken, lr = η_l.
 * Computed in float64, stored as float32.
 */
export function scaffoldControlUpdate(
  ci: TensorMap,
  c: TensorMap,
  x: TensorMap,
  y: TensorMap,
  localSteps: number,
  lr: number,
): ScaffoldControlResult {
  if (!Number.isSafeInteger(localSteps) || localSteps < 1) {
    throw new StrategyArgumentError("localSteps must be a positive integer (the local SGD steps taken)");
  }
  requirePositive(lr, "lr");
  assertSameLayout(x, ci, "scaffoldControlUpdate c_i");
  assertSameLayout(x, c, "scaffoldControlUpdate c");
  assertSameLayout(x, y, "scaffoldControlUpdate y");
  const inv = 1 / (localSteps * lr);
  const controlVariate: TensorMap = new Map();
  const controlDelta: TensorMap = new Map();
  for (const [name, t] of x) {
    const xd = t.data;
    const yd = y.get(name)!.data;
    const cd = c.get(name)!.data;
    const cid = ci.get(name)!.data;
    const next = new Float32Array(xd.length);
    const delta = new Float32Array(xd.length);
    for (let i = 0; i < xd.length; i++) {
      const d = (xd[i] - yd[i]) * inv - cd[i];
      next[i] = cid[i] + d;
      delta[i] = d;
    }
    controlVariate.set(name, { shape: [...t.shape], data: next });
    controlDelta.set(name, { shape: [...t.shape], data: delta });
  }
  return { controlVariate, controlDelta };
}
