import {
  assertFinite,
  assertSameLayout,
  assertWellFormed,
  TensorLayoutError,
} from "../tensor/tensor-math.js";
import { cloneTensors, type TensorMap } from "../tensor/tensor.js";
import { AggregationError } from "./errors.js";

/**
 * Cross-round strategy state travels as one flat map with prefixed names (`m/<param>`), so a
 * checkpoint can store it as safetensors next to the model.
 */
export function packState(parts: Record<string, TensorMap | null>): TensorMap {
  const out: TensorMap = new Map();
  for (const [prefix, map] of Object.entries(parts)) {
    if (map === null) continue;
    for (const [name, t] of cloneTensors(map)) out.set(`${prefix}/${name}`, t);
  }
  return out;
}

/** Split a packed state into its parts; every tensor well-formed and finite, no unknown prefix. */
export function unpackState(
  tensors: TensorMap,
  prefixes: readonly string[],
  what: string,
): Record<string, TensorMap> {
  const parts: Record<string, TensorMap> = {};
  for (const p of prefixes) parts[p] = new Map();
  try {
    for (const [key, t] of tensors) {
      const slash = key.indexOf("/");
      const prefix = slash < 0 ? "" : key.slice(0, slash);
      if (!prefixes.includes(prefix)) {
        throw new TensorLayoutError("TENSOR_UNEXPECTED", key, `${what}: unknown state tensor`);
      }
      assertWellFormed(t, key, what);
      parts[prefix].set(key.slice(slash + 1), t);
    }
    for (const p of prefixes) assertFinite(parts[p], what);
    if (prefixes.length > 1)
      for (const p of prefixes.slice(1)) assertSameLayout(parts[prefixes[0]], parts[p], what);
  } catch (err) {
    if (err instanceof TensorLayoutError) {
      throw new AggregationError("STATE_INVALID", err.message, {
        field: "state",
        tensor: err.tensor,
        cause: err,
      });
    }
    throw err;
  }
  for (const p of prefixes) parts[p] = cloneTensors(parts[p]);
  return parts;
}

/** The strategy's state must line up with the round's global model. */
export function assertStateMatches(global: TensorMap, state: TensorMap, what: string): void {
  try {
    assertSameLayout(global, state, what);
  } catch (err) {
    if (err instanceof TensorLayoutError) {
      throw new AggregationError("STATE_INVALID", err.message, {
        field: "state",
        tensor: err.tensor,
        cause: err,
      });
    }
    throw err;
  }
}
