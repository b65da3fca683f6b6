import { EnclaveError } from "../errors.js";
import { displayName } from "../tensor/tensor-math.js";
import type { TensorMap } from "../tensor/tensor.js";

/**
 * A parameter as the training loop holds it (structurally the model's Parameter): the client-side
 * strategy hooks read `data` and correct `grad` in place, once per local step.
 */
export interface TrainableTensor {
  readonly name: string;
  readonly data: Float32Array;
  readonly grad: Float32Array;
}

/** Signature of the trainer's `gradientHook`: called after the (noised) gradient, before the optimizer. */
export type GradientHook = (params: readonly TrainableTensor[]) => void;

/** Bad argument to a client-side helper; `message` names the argument, never its values. */
export class StrategyArgumentError extends EnclaveError {
  constructor(message: string) {
    super("STRATEGY_INVALID_ARGUMENT", message);
  }
}

export function requireNonNegative(x: number, name: string): void {
  if (!Number.isFinite(x) || x < 0) throw new StrategyArgumentError(`${name} must be a finite number >= 0`);
}

export function requirePositive(x: number, name: string): void {
  if (!Number.isFinite(x) || x <= 0) throw new StrategyArgumentError(`${name} must be a finite number > 0`);
}

/** For each parameter, the same-named tensor of `map`, checked once so the per-step loop only indexes. */
export function matchParameters(
  params: readonly TrainableTensor[],
  map: TensorMap,
  what: string,
): Float32Array[] {
  if (params.length !== map.size) {
    throw new StrategyArgumentError(`${what}: model has ${params.length} parameters, expected ${map.size}`);
  }
  return params.map((p) => {
    const t = map.get(p.name);
    if (t === undefined)
      throw new StrategyArgumentError(`${what}: parameter ${displayName(p.name)} is missing`);
    if (t.data.length !== p.data.length || p.grad.length !== p.data.length) {
      throw new StrategyArgumentError(`${what}: parameter ${displayName(p.name)} has the wrong size`);
    }
    return t.data;
  });
}
