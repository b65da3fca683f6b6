import { EnclaveError } from "../errors.js";
import {
  convOutput,
  gaussianNoiseWords,
  type ActivationKind,
  type ConvGeometry,
  type TemperedSigmoid,
} from "./kernels.js";

/**
 * Argument checks shared by every backend, so a wrong size or type fails the same way whichever
 * backend runs (the native addon checks again as its memory-safety backstop). Messages name the
 * argument and the rule, never a data value.
 */
export class KernelArgumentError extends EnclaveError {
  constructor(message: string) {
    super("KERNEL_ARGUMENT_INVALID", message);
  }
}

const MAX_DIM = 0x7fffffff;

function fail(message: string): never {
  throw new KernelArgumentError(message);
}

function dim(op: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > MAX_DIM) fail(`${op}: ${name} must be an integer in [0, 2^31)`);
}

function f32(op: string, name: string, v: unknown): asserts v is Float32Array {
  if (!(v instanceof Float32Array)) fail(`${op}: ${name} must be a Float32Array`);
}

function atLeast(op: string, name: string, arr: { length: number }, need: number, what: string): void {
  if (arr.length < need) fail(`${op}: ${name} has fewer than ${what} elements`);
}

function finite(op: string, name: string, v: number): void {
  if (typeof v !== "number" || !Number.isFinite(v)) fail(`${op}: ${name} must be a finite number`);
}

/** Whether the first xn elements of x and the first yn of y share bytes (4-byte elements). */
function overlaps(
  x: Float32Array | Int32Array,
  xn: number,
  y: Float32Array | Int32Array,
  yn: number,
): boolean {
  if (x.buffer !== y.buffer || xn === 0 || yn === 0) return false;
  const x0 = x.byteOffset;
  const y0 = y.byteOffset;
  return x0 < y0 + yn * 4 && y0 < x0 + xn * 4;
}

export function checkGemm(
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  beta: number,
): void {
  if (typeof transA !== "boolean") fail("gemm: transA must be a boolean");
  if (typeof transB !== "boolean") fail("gemm: transB must be a boolean");
  dim("gemm", "m", m);
  dim("gemm", "n", n);
  dim("gemm", "k", k);
  f32("gemm", "a", a);
  f32("gemm", "b", b);
  f32("gemm", "c", c);
  finite("gemm", "beta", beta);
  atLeast("gemm", "a", a, m * k, "m*k");
  atLeast("gemm", "b", b, k * n, "k*n");
  atLeast("gemm", "c", c, m * n, "m*n");
  if (overlaps(c, m * n, a, m * k) || overlaps(c, m * n, b, k * n)) fail("gemm: c must not overlap a or b");
}

export function checkRowSumSquares(x: Float32Array, rows: number, cols: number, out: Float64Array): void {
  f32("rowSumSquares", "x", x);
  dim("rowSumSquares", "rows", rows);
  dim("rowSumSquares", "cols", cols);
  if (!(out instanceof Float64Array)) fail("rowSumSquares: out must be a Float64Array");
  atLeast("rowSumSquares", "x", x, rows * cols, "rows*cols");
  atLeast("rowSumSquares", "out", out, rows, "rows");
}

export function checkAddRowVector(x: Float32Array, rows: number, cols: number, v: Float32Array): void {
  f32("addRowVector", "x", x);
  dim("addRowVector", "rows", rows);
  dim("addRowVector", "cols", cols);
  f32("addRowVector", "v", v);
  atLeast("addRowVector", "x", x, rows * cols, "rows*cols");
  atLeast("addRowVector", "v", v, cols, "cols");
  if (rows > 0 && overlaps(x, rows * cols, v, cols)) fail("addRowVector: v must not overlap x");
}

export function checkColSum(
  x: Float32Array,
  rows: number,
  cols: number,
  w: Float32Array | null,
  out: Float32Array,
  beta: number,
): void {
  f32("colSum", "x", x);
  dim("colSum", "rows", rows);
  dim("colSum", "cols", cols);
  if (w !== null && !(w instanceof Float32Array)) fail("colSum: w must be a Float32Array or null");
  f32("colSum", "out", out);
  finite("colSum", "beta", beta);
  atLeast("colSum", "x", x, rows * cols, "rows*cols");
  if (w) atLeast("colSum", "w", w, rows, "rows");
  atLeast("colSum", "out", out, cols, "cols");
}

export function checkScaleRows(
  x: Float32Array,
  rows: number,
  cols: number,
  s: Float32Array,
  out: Float32Array,
): void {
  f32("scaleRows", "x", x);
  dim("scaleRows", "rows", rows);
  dim("scaleRows", "cols", cols);
  f32("scaleRows", "s", s);
  f32("scaleRows", "out", out);
  atLeast("scaleRows", "x", x, rows * cols, "rows*cols");
  atLeast("scaleRows", "s", s, rows, "rows");
  atLeast("scaleRows", "out", out, rows * cols, "rows*cols");
}

export function checkAxpy(alpha: number, x: Float32Array, y: Float32Array): void {
  finite("axpy", "alpha", alpha);
  f32("axpy", "x", x);
  f32("axpy", "y", y);
  if (x.length !== y.length) fail("axpy: x and y must have the same length");
}

export const ACTIVATION_CODES: Readonly<Record<ActivationKind, number>> = { relu: 0, tanh: 1, gelu: 2 };

function kindOf(op: string, kind: ActivationKind): void {
  if (typeof kind !== "string" || !Object.hasOwn(ACTIVATION_CODES, kind))
    fail(`${op}: unknown activation kind`);
}

export function checkActivation(kind: ActivationKind, x: Float32Array, out: Float32Array): void {
  kindOf("activation", kind);
  f32("activation", "x", x);
  f32("activation", "out", out);
  if (out.length < x.length) fail("activation: out is shorter than x");
}

export function checkActivationBackward(
  kind: ActivationKind,
  x: Float32Array,
  dy: Float32Array,
  out: Float32Array,
): void {
  kindOf("activationBackward", kind);
  f32("activationBackward", "x", x);
  f32("activationBackward", "dy", dy);
  f32("activationBackward", "out", out);
  if (dy.length < x.length) fail("activationBackward: dy is shorter than x");
  if (out.length < x.length) fail("activationBackward: out is shorter than x");
}

export function checkSoftmaxCrossEntropy(
  logits: Float32Array,
  labels: Int32Array,
  rows: number,
  classes: number,
  loss: Float64Array,
  grad: Float32Array,
): void {
  const op = "softmaxCrossEntropy";
  f32(op, "logits", logits);
  if (!(labels instanceof Int32Array)) fail(`${op}: labels must be an Int32Array`);
  dim(op, "rows", rows);
  dim(op, "classes", classes);
  if (!(loss instanceof Float64Array)) fail(`${op}: loss must be a Float64Array`);
  f32(op, "grad", grad);
  if (rows > 0 && classes < 1) fail(`${op}: classes must be at least 1`);
  atLeast(op, "logits", logits, rows * classes, "rows*classes");
  atLeast(op, "labels", labels, rows, "rows");
  atLeast(op, "loss", loss, rows, "rows");
  atLeast(op, "grad", grad, rows * classes, "rows*classes");
  for (let i = 0; i < rows; i++) {
    const y = labels[i];
    if (y < 0 || y >= classes) fail(`${op}: every label must be in [0, classes)`);
  }
}

export function checkAddGaussianNoise(y: Float32Array, std: number, uniform: Uint32Array): void {
  f32("addGaussianNoise", "y", y);
  finite("addGaussianNoise", "std", std);
  if (std < 0) fail("addGaussianNoise: std must not be negative");
  if (!(uniform instanceof Uint32Array)) fail("addGaussianNoise: uniform must be a Uint32Array");
  if (uniform.length < gaussianNoiseWords(y.length)) fail("addGaussianNoise: not enough random words");
}

const GEOMETRY_FIELDS = [
  "channels",
  "height",
  "width",
  "kernelH",
  "kernelW",
  "strideH",
  "strideW",
  "dilationH",
  "dilationW",
] as const;

/** Sizes of a valid geometry: per-example input, unfolded rows and output positions. */
export function checkConvGeometry(
  op: string,
  g: ConvGeometry,
): { image: number; patch: number; positions: number } {
  if (typeof g !== "object" || g === null) fail(`${op}: g must be a ConvGeometry`);
  for (const f of GEOMETRY_FIELDS) {
    dim(op, `g.${f}`, g[f]);
    if (g[f] < 1) fail(`${op}: g.${f} must be >= 1`);
  }
  dim(op, "g.padH", g.padH);
  dim(op, "g.padW", g.padW);
  if (g.channels % g.groups !== 0) fail(`${op}: g.groups must divide g.channels`);
  const { outH, outW } = convOutput(g);
  if (outH < 1 || outW < 1) fail(`${op}: the window does not fit the padded image`);
  const image = g.channels * g.height * g.width;
  const patch = g.channels * g.kernelH * g.kernelW;
  if (image > MAX_DIM || patch * outH * outW > MAX_DIM) fail(`${op}: the geometry is too large`);
  return { image, patch, positions: outH * outW };
}

function checkUnfold(
  op: string,
  image: Float32Array,
  rows: number,
  g: ConvGeometry,
  cols: Float32Array,
): void {
  f32(op, op === "im2col" ? "x" : "dx", image);
  dim(op, "rows", rows);
  f32(op, "cols", cols);
  const s = checkConvGeometry(op, g);
  atLeast(op, op === "im2col" ? "x" : "dx", image, rows * s.image, "rows*channels*height*width");
  atLeast(op, "cols", cols, rows * s.patch * s.positions, "rows*channels*kernelH*kernelW*outH*outW");
  if (overlaps(image, rows * s.image, cols, rows * s.patch * s.positions))
    fail(`${op}: cols must not overlap the image`);
}

export function checkIm2col(x: Float32Array, rows: number, g: ConvGeometry, cols: Float32Array): void {
  checkUnfold("im2col", x, rows, g, cols);
}

export function checkCol2im(cols: Float32Array, rows: number, g: ConvGeometry, dx: Float32Array): void {
  checkUnfold("col2im", dx, rows, g, cols);
}

/** Sizes of a valid max-pooling geometry: per-example input and output. */
function checkPoolGeometry(op: string, g: ConvGeometry): { image: number; out: number } {
  const s = checkConvGeometry(op, g);
  if (g.dilationH !== 1 || g.dilationW !== 1 || g.groups !== 1) fail(`${op}: dilation and groups must be 1`);
  if (2 * g.padH > g.kernelH || 2 * g.padW > g.kernelW)
    fail(`${op}: padding must be at most half the kernel`);
  return { image: s.image, out: g.channels * s.positions };
}

function int32(op: string, name: string, v: unknown): asserts v is Int32Array {
  if (!(v instanceof Int32Array)) fail(`${op}: ${name} must be an Int32Array`);
}

export function checkMaxPool2d(
  x: Float32Array,
  rows: number,
  g: ConvGeometry,
  y: Float32Array,
  argmax: Int32Array,
): void {
  const op = "maxPool2d";
  f32(op, "x", x);
  dim(op, "rows", rows);
  f32(op, "y", y);
  int32(op, "argmax", argmax);
  const s = checkPoolGeometry(op, g);
  atLeast(op, "x", x, rows * s.image, "rows*channels*height*width");
  atLeast(op, "y", y, rows * s.out, "rows*channels*outH*outW");
  atLeast(op, "argmax", argmax, rows * s.out, "rows*channels*outH*outW");
  if (
    overlaps(x, rows * s.image, y, rows * s.out) ||
    overlaps(x, rows * s.image, argmax, rows * s.out) ||
    overlaps(y, rows * s.out, argmax, rows * s.out)
  )
    fail(`${op}: buffers must not overlap`);
}

export function checkMaxPool2dBackward(
  dy: Float32Array,
  rows: number,
  g: ConvGeometry,
  argmax: Int32Array,
  dx: Float32Array,
): void {
  const op = "maxPool2dBackward";
  f32(op, "dy", dy);
  dim(op, "rows", rows);
  int32(op, "argmax", argmax);
  f32(op, "dx", dx);
  const s = checkPoolGeometry(op, g);
  atLeast(op, "dy", dy, rows * s.out, "rows*channels*outH*outW");
  atLeast(op, "argmax", argmax, rows * s.out, "rows*channels*outH*outW");
  atLeast(op, "dx", dx, rows * s.image, "rows*channels*height*width");
  if (overlaps(dx, rows * s.image, dy, rows * s.out) || overlaps(dx, rows * s.image, argmax, rows * s.out))
    fail(`${op}: dx must not overlap dy or argmax`);
  for (let o = 0; o < rows * s.out; o++) {
    const a = argmax[o];
    if (a < 0 || a >= s.image) fail(`${op}: every argmax must index its example`);
  }
}

function checkTempered(op: string, t: TemperedSigmoid): void {
  if (typeof t !== "object" || t === null) fail(`${op}: t must be a TemperedSigmoid`);
  finite(op, "scale", t.scale);
  finite(op, "inverseTemperature", t.inverseTemperature);
  finite(op, "offset", t.offset);
}

export function checkTemperedSigmoid(x: Float32Array, t: TemperedSigmoid, out: Float32Array): void {
  const op = "temperedSigmoid";
  f32(op, "x", x);
  checkTempered(op, t);
  f32(op, "out", out);
  if (out.length < x.length) fail(`${op}: out is shorter than x`);
}

export function checkTemperedSigmoidBackward(
  y: Float32Array,
  dy: Float32Array,
  t: TemperedSigmoid,
  out: Float32Array,
): void {
  const op = "temperedSigmoidBackward";
  f32(op, "y", y);
  f32(op, "dy", dy);
  checkTempered(op, t);
  f32(op, "out", out);
  if (t.scale === 0) fail(`${op}: scale must not be 0`);
  if (dy.length < y.length) fail(`${op}: dy is shorter than y`);
  if (out.length < y.length) fail(`${op}: out is shorter than y`);
}

export function checkTransposeBlocks(
  x: Float32Array,
  rows: number,
  a: number,
  b: number,
  out: Float32Array,
): void {
  const op = "transposeBlocks";
  f32(op, "x", x);
  dim(op, "rows", rows);
  dim(op, "a", a);
  dim(op, "b", b);
  f32(op, "out", out);
  const n = rows * a * b;
  if (n > MAX_DIM) fail(`${op}: rows*a*b must be below 2^31`);
  atLeast(op, "x", x, n, "rows*a*b");
  atLeast(op, "out", out, n, "rows*a*b");
  if (overlaps(x, n, out, n)) fail(`${op}: out must not overlap x`);
}
