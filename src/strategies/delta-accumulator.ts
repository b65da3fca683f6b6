import type { TensorMap } from "../tensor/tensor.js";

/**
 * A running float64 sum Σ w_i · (y_i − x) laid out like the model: the O(model) memory behind
 * every streaming strategy. Summing deltas rather than weights keeps the small differences
 * between client models from drowning in the rounding of the large weights themselves.
 */
export class DeltaAccumulator {
  readonly sums = new Map<string, Float64Array>();
  private weight = 0;

  constructor(layout: TensorMap) {
    for (const [name, t] of layout) this.sums.set(name, new Float64Array(t.data.length));
  }

  get totalWeight(): number {
    return this.weight;
  }

  /** sums += w · (y − x), or w · y when `x` is omitted. Layouts are validated by the caller. */
  add(y: TensorMap, x: TensorMap | null, w: number): void {
    for (const [name, acc] of this.sums) {
      const yd = y.get(name)!.data;
      if (x === null) {
        for (let i = 0; i < acc.length; i++) acc[i] += w * yd[i];
      } else {
        const xd = x.get(name)!.data;
        for (let i = 0; i < acc.length; i++) acc[i] += w * (yd[i] - xd[i]);
      }
    }
    this.weight += w;
  }
}

/** A new float32 map x + factor · s, with s a float64 map of the same layout. */
export function addScaled(x: TensorMap, s: Map<string, Float64Array>, factor: number): TensorMap {
  const out: TensorMap = new Map();
  for (const [name, t] of x) {
    const sd = s.get(name)!;
    const xd = t.data;
    const od = new Float32Array(xd.length);
    for (let i = 0; i < od.length; i++) od[i] = xd[i] + factor * sd[i];
    out.set(name, { shape: [...t.shape], data: od });
  }
  return out;
}
