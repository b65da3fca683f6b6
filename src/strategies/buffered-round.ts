import type { TensorMap } from "../tensor/tensor.js";
import { RoundBase } from "./round-base.js";
import type { ClientUpdate } from "./types.js";

/**
 * Robust rules compare updates with each other (order statistics, pairwise distances), so they
 * cannot fold an update into a running sum: they hold every update of the round until `finish`,
 * memory O(clients × model). The updates are kept by reference: callers must not mutate them.
 */
export abstract class BufferedRound extends RoundBase {
  private readonly updates: ClientUpdate[] = [];

  protected accept(u: ClientUpdate): void {
    this.updates.push(u);
  }

  /** The round's client models sorted by client id, so results never depend on arrival order. */
  protected models(): TensorMap[] {
    return [...this.updates]
      .sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0))
      .map((u) => u.weights);
  }

  protected sortedClientIds(): string[] {
    return this.updates.map((u) => u.clientId).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }
}

/**
 * out[j] = reduce(values of coordinate j across the models). `reduce` receives a scratch buffer
 * it may reorder (e.g. sort in place).
 */
export function coordinatewise(
  global: TensorMap,
  models: readonly TensorMap[],
  reduce: (values: Float64Array) => number,
): TensorMap {
  const out: TensorMap = new Map();
  const values = new Float64Array(models.length);
  for (const [name, t] of global) {
    const columns = models.map((m) => m.get(name)!.data);
    const o = new Float32Array(t.data.length);
    for (let j = 0; j < o.length; j++) {
      for (let k = 0; k < columns.length; k++) values[k] = columns[k][j];
      o[j] = reduce(values);
    }
    out.set(name, { shape: [...t.shape], data: o });
  }
  return out;
}
