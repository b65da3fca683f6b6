import { EnclaveError } from "../errors.js";
import { sameShape, sizeOf, type Tensor, type TensorMap } from "./tensor.js";

/**
 * Plain vector math over Tensor and TensorMap (model weights, updates, control variates).
 * Every operation checks names and shapes first and fails closed; reductions accumulate in float64.
 * Not a hot loop of training (those live in Kernels): these run once per client update or round.
 */

export type TensorLayoutCode =
  | "TENSOR_MISSING"
  | "TENSOR_UNEXPECTED"
  | "TENSOR_SHAPE_MISMATCH"
  | "TENSOR_DTYPE_MISMATCH"
  | "TENSOR_NOT_FINITE";

/** Two tensors (or maps) do not line up, or a tensor holds NaN/Inf. `tensor` names the offender. */
export class TensorLayoutError extends EnclaveError {
  declare readonly code: TensorLayoutCode;
  readonly tensor: string;
  constructor(code: TensorLayoutCode, tensor: string, message: string) {
    super(code, message);
    this.tensor = tensor;
  }
}

const MAX_NAME_IN_MESSAGE = 80;

/**
 * A tensor name fit for an error message: names may come from an untrusted peer, so they are
 * quoted (no control characters or line breaks reach a log) and truncated.
 */
export function displayName(name: string): string {
  const cut = name.length > MAX_NAME_IN_MESSAGE ? name.slice(0, MAX_NAME_IN_MESSAGE) + "..." : name;
  return JSON.stringify(cut);
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}

/** Checks one tensor's own well-formedness: float32 data whose length matches a valid shape. */
export function assertWellFormed(t: Tensor, name: string, what: string): void {
  if (!(t?.data instanceof Float32Array)) {
    throw new TensorLayoutError(
      "TENSOR_DTYPE_MISMATCH",
      name,
      `${what}: tensor ${displayName(name)} must be float32`,
    );
  }
  const shape = t.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new TensorLayoutError(
      "TENSOR_SHAPE_MISMATCH",
      name,
      `${what}: tensor ${displayName(name)} shape must be a list of non-negative integers`,
    );
  }
  if (t.data.length !== sizeOf(shape)) {
    throw new TensorLayoutError(
      "TENSOR_SHAPE_MISMATCH",
      name,
      `${what}: tensor ${displayName(name)} has ${t.data.length} elements, shape ${shapeText(shape)} needs ${sizeOf(shape)}`,
    );
  }
}

/** `candidate` has exactly the reference's shape and dtype (float32). */
export function assertSameShape(reference: Tensor, candidate: Tensor, name: string, what: string): void {
  assertWellFormed(candidate, name, what);
  if (!sameShape(reference.shape, candidate.shape)) {
    throw new TensorLayoutError(
      "TENSOR_SHAPE_MISMATCH",
      name,
      `${what}: tensor ${displayName(name)} has shape ${shapeText(candidate.shape)}, expected ${shapeText(reference.shape)}`,
    );
  }
}

/**
 * `candidate` holds exactly the reference's tensor names (no missing, no extra), each with the
 * reference's shape and dtype. Order is not compared: lookups are by name.
 */
export function assertSameLayout(reference: TensorMap, candidate: TensorMap, what: string): void {
  if (!(candidate instanceof Map)) {
    throw new TensorLayoutError("TENSOR_MISSING", "", `${what}: expected a map of named tensors`);
  }
  for (const [name, ref] of reference) {
    const t = candidate.get(name);
    if (t === undefined) {
      throw new TensorLayoutError("TENSOR_MISSING", name, `${what}: tensor ${displayName(name)} is missing`);
    }
    assertSameShape(ref, t, name, what);
  }
  if (candidate.size !== reference.size) {
    for (const name of candidate.keys()) {
      if (!reference.has(name)) {
        throw new TensorLayoutError(
          "TENSOR_UNEXPECTED",
          name,
          `${what}: tensor ${displayName(name)} is not in the model`,
        );
      }
    }
  }
}

/** Every value of every tensor is finite (no NaN, no ±Inf). */
export function assertFinite(map: TensorMap, what: string): void {
  for (const [name, t] of map) {
    const d = t.data;
    for (let i = 0; i < d.length; i++) {
      // x - x is 0 for finite x and NaN for NaN and ±Inf: one comparison per element.
      if (d[i] - d[i] !== 0) {
        throw new TensorLayoutError(
          "TENSOR_NOT_FINITE",
          name,
          `${what}: tensor ${displayName(name)} contains a non-finite value`,
        );
      }
    }
  }
}

function isMap(x: Tensor | TensorMap): x is TensorMap {
  return x instanceof Map;
}

function pairs(a: TensorMap, b: TensorMap, what: string): Array<[string, Tensor, Tensor]> {
  assertSameLayout(a, b, what);
  const out: Array<[string, Tensor, Tensor]> = [];
  for (const [name, ta] of a) out.push([name, ta, b.get(name)!]);
  return out;
}

function checkPair(a: Tensor, b: Tensor, what: string): void {
  assertWellFormed(a, "a", what);
  assertSameShape(a, b, "b", what);
}

function requireFiniteScalar(x: number, name: string, what: string): void {
  if (!Number.isFinite(x)) throw new RangeError(`${what}: ${name} must be a finite number`);
}

/** a + b (new tensors; a's order). */
export function add(a: Tensor, b: Tensor): Tensor;
export function add(a: TensorMap, b: TensorMap): TensorMap;
export function add(a: Tensor | TensorMap, b: Tensor | TensorMap): Tensor | TensorMap {
  return combine(a, b, 1, "add");
}

/** a - b (new tensors; a's order). */
export function sub(a: Tensor, b: Tensor): Tensor;
export function sub(a: TensorMap, b: TensorMap): TensorMap;
export function sub(a: Tensor | TensorMap, b: Tensor | TensorMap): Tensor | TensorMap {
  return combine(a, b, -1, "sub");
}

function combineTensor(a: Tensor, b: Tensor, sign: number): Tensor {
  const out = new Float32Array(a.data.length);
  const x = a.data;
  const y = b.data;
  if (sign > 0) for (let i = 0; i < out.length; i++) out[i] = x[i] + y[i];
  else for (let i = 0; i < out.length; i++) out[i] = x[i] - y[i];
  return { shape: [...a.shape], data: out };
}

function combine(
  a: Tensor | TensorMap,
  b: Tensor | TensorMap,
  sign: number,
  what: string,
): Tensor | TensorMap {
  if (isMap(a) && isMap(b)) {
    const out: TensorMap = new Map();
    for (const [name, ta, tb] of pairs(a, b, what)) out.set(name, combineTensor(ta, tb, sign));
    return out;
  }
  if (isMap(a) || isMap(b)) throw new TypeError(`${what}: cannot mix a tensor and a tensor map`);
  checkPair(a, b, what);
  return combineTensor(a, b, sign);
}

/** s · a (new tensors). */
export function scale(a: Tensor, s: number): Tensor;
export function scale(a: TensorMap, s: number): TensorMap;
export function scale(a: Tensor | TensorMap, s: number): Tensor | TensorMap {
  requireFiniteScalar(s, "scale factor", "scale");
  const one = (t: Tensor): Tensor => {
    const out = new Float32Array(t.data.length);
    for (let i = 0; i < out.length; i++) out[i] = s * t.data[i];
    return { shape: [...t.shape], data: out };
  };
  if (!isMap(a)) {
    assertWellFormed(a, "", "scale");
    return one(a);
  }
  const out: TensorMap = new Map();
  for (const [name, t] of a) {
    assertWellFormed(t, name, "scale");
    out.set(name, one(t));
  }
  return out;
}

/** y ← y + alpha · x, in place on y (BLAS axpy). Returns y. */
export function axpy(alpha: number, x: Tensor, y: Tensor): Tensor;
export function axpy(alpha: number, x: TensorMap, y: TensorMap): TensorMap;
export function axpy(alpha: number, x: Tensor | TensorMap, y: Tensor | TensorMap): Tensor | TensorMap {
  requireFiniteScalar(alpha, "alpha", "axpy");
  const one = (tx: Tensor, ty: Tensor): void => {
    const xd = tx.data;
    const yd = ty.data;
    for (let i = 0; i < yd.length; i++) yd[i] += alpha * xd[i];
  };
  if (isMap(x) && isMap(y)) {
    for (const [, tx, ty] of pairs(x, y, "axpy")) one(tx, ty);
    return y;
  }
  if (isMap(x) || isMap(y)) throw new TypeError("axpy: cannot mix a tensor and a tensor map");
  checkPair(x, y, "axpy");
  one(x, y);
  return y;
}

/** y ← s · y, in place. Returns y. */
export function scaleInPlace(y: Tensor, s: number): Tensor;
export function scaleInPlace(y: TensorMap, s: number): TensorMap;
export function scaleInPlace(y: Tensor | TensorMap, s: number): Tensor | TensorMap {
  requireFiniteScalar(s, "scale factor", "scaleInPlace");
  const tensors = isMap(y) ? [...y.values()] : [y];
  for (const t of tensors) {
    const d = t.data;
    for (let i = 0; i < d.length; i++) d[i] *= s;
  }
  return y;
}

/** Σ a_i · b_i over every coordinate (float64 accumulation). */
export function dot(a: Tensor, b: Tensor): number;
export function dot(a: TensorMap, b: TensorMap): number;
export function dot(a: Tensor | TensorMap, b: Tensor | TensorMap): number {
  const one = (ta: Tensor, tb: Tensor): number => {
    let s = 0;
    const x = ta.data;
    const y = tb.data;
    for (let i = 0; i < x.length; i++) s += x[i] * y[i];
    return s;
  };
  if (isMap(a) && isMap(b)) {
    let s = 0;
    for (const [, ta, tb] of pairs(a, b, "dot")) s += one(ta, tb);
    return s;
  }
  if (isMap(a) || isMap(b)) throw new TypeError("dot: cannot mix a tensor and a tensor map");
  checkPair(a, b, "dot");
  return one(a, b);
}

/** ‖a - b‖² over every coordinate (float64 accumulation). */
export function squaredDistance(a: Tensor, b: Tensor): number;
export function squaredDistance(a: TensorMap, b: TensorMap): number;
export function squaredDistance(a: Tensor | TensorMap, b: Tensor | TensorMap): number {
  const one = (ta: Tensor, tb: Tensor): number => {
    let s = 0;
    const x = ta.data;
    const y = tb.data;
    for (let i = 0; i < x.length; i++) {
      const d = x[i] - y[i];
      s += d * d;
    }
    return s;
  };
  if (isMap(a) && isMap(b)) {
    let s = 0;
    for (const [, ta, tb] of pairs(a, b, "squaredDistance")) s += one(ta, tb);
    return s;
  }
  if (isMap(a) || isMap(b)) throw new TypeError("squaredDistance: cannot mix a tensor and a tensor map");
  checkPair(a, b, "squaredDistance");
  return one(a, b);
}

/** Σ x_i² of one tensor's data (float64 accumulation). */
function sumSquares(d: Float32Array): number {
  let s = 0;
  for (let i = 0; i < d.length; i++) s += d[i] * d[i];
  return s;
}

/** Euclidean norm of a tensor, or of all coordinates of a map taken as one vector. */
export function l2Norm(a: Tensor | TensorMap): number {
  if (!isMap(a)) return Math.sqrt(sumSquares(a.data));
  let s = 0;
  for (const t of a.values()) s += sumSquares(t.data);
  return Math.sqrt(s);
}

/**
 * The global norm of a map: ‖concat(all tensors)‖₂, the norm that flat clipping bounds
 * (DP-SGD per-example gradients, DP-FedAvg client deltas). Same value as l2Norm(map).
 */
export function globalNorm(map: TensorMap): number {
  return l2Norm(map);
}

/** Total number of scalars in a map. */
export function parameterCount(map: TensorMap): number {
  let n = 0;
  for (const t of map.values()) n += t.data.length;
  return n;
}
