/** A dense float32 tensor, row-major. The only numeric container the features share. */
export interface Tensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** Named tensors in a fixed, meaningful order (model parameters, updates, control variates). */
export type TensorMap = Map<string, Tensor>;

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function tensor(shape: readonly number[], data?: Float32Array): Tensor {
  const n = sizeOf(shape);
  if (data && data.length !== n)
    throw new RangeError(`tensor data has ${data.length} elements, shape needs ${n}`);
  return { shape: [...shape], data: data ?? new Float32Array(n) };
}

export function zerosLike(map: TensorMap): TensorMap {
  const out: TensorMap = new Map();
  for (const [k, t] of map) out.set(k, tensor(t.shape));
  return out;
}

export function cloneTensors(map: TensorMap): TensorMap {
  const out: TensorMap = new Map();
  for (const [k, t] of map) out.set(k, tensor(t.shape, t.data.slice()));
  return out;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
