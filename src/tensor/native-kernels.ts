import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import {
  ACTIVATION_CODES,
  checkActivation,
  checkActivationBackward,
  checkAddGaussianNoise,
  checkAddRowVector,
  checkAxpy,
  checkCol2im,
  checkColSum,
  checkGemm,
  checkIm2col,
  checkMaxPool2d,
  checkMaxPool2dBackward,
  checkRowSumSquares,
  checkScaleRows,
  checkSoftmaxCrossEntropy,
  checkTemperedSigmoid,
  checkTemperedSigmoidBackward,
  checkTransposeBlocks,
} from "./kernel-args.js";
import type { ActivationKind, ConvGeometry, Kernels, TemperedSigmoid } from "./kernels.js";

/** The C++ addon built from native/ by scripts/build-native.mjs (ABI of this wrapper: 2). */
interface NativeAddon {
  readonly abi: number;
  /** CPU paths this machine supports, best first, e.g. ["avx512", "avx2-fma", "generic"]. */
  paths(): string[];
  create(path: string, threads: number): NativeOps;
  hardwareThreads(): number;
}

interface NativeOps {
  readonly path: string;
  gemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    beta: number,
  ): void;
  rowSumSquares(x: Float32Array, rows: number, cols: number, out: Float64Array): void;
  addRowVector(x: Float32Array, rows: number, cols: number, v: Float32Array): void;
  colSum(
    x: Float32Array,
    rows: number,
    cols: number,
    w: Float32Array | null,
    out: Float32Array,
    beta: number,
  ): void;
  scaleRows(x: Float32Array, rows: number, cols: number, s: Float32Array, out: Float32Array): void;
  axpy(alpha: number, x: Float32Array, y: Float32Array): void;
  activation(kind: number, x: Float32Array, out: Float32Array): void;
  activationBackward(kind: number, x: Float32Array, dy: Float32Array, out: Float32Array): void;
  softmaxCrossEntropy(
    logits: Float32Array,
    labels: Int32Array,
    rows: number,
    classes: number,
    loss: Float64Array,
    grad: Float32Array,
  ): void;
  addGaussianNoise(y: Float32Array, std: number, uniform: Uint32Array): void;
  setThreads(n: number): void;
  threads(): number;
  im2col(x: Float32Array, rows: number, geometry: Int32Array, cols: Float32Array): void;
  col2im(cols: Float32Array, rows: number, geometry: Int32Array, dx: Float32Array): void;
  maxPool2d(x: Float32Array, rows: number, geometry: Int32Array, y: Float32Array, argmax: Int32Array): void;
  maxPool2dBackward(
    dy: Float32Array,
    rows: number,
    geometry: Int32Array,
    argmax: Int32Array,
    dx: Float32Array,
  ): void;
  temperedSigmoid(
    x: Float32Array,
    scale: number,
    inverseTemperature: number,
    offset: number,
    out: Float32Array,
  ): void;
  temperedSigmoidBackward(
    y: Float32Array,
    dy: Float32Array,
    scale: number,
    inverseTemperature: number,
    offset: number,
    out: Float32Array,
  ): void;
  transposeBlocks(x: Float32Array, rows: number, a: number, b: number, out: Float32Array): void;
}

/** The addon's geometry layout: 12 int32 in this order. */
function packGeometry(g: ConvGeometry, out: Int32Array): Int32Array {
  out[0] = g.channels;
  out[1] = g.height;
  out[2] = g.width;
  out[3] = g.kernelH;
  out[4] = g.kernelW;
  out[5] = g.strideH;
  out[6] = g.strideW;
  out[7] = g.padH;
  out[8] = g.padW;
  out[9] = g.dilationH;
  out[10] = g.dilationW;
  out[11] = g.groups;
  return out;
}

const ADDON_ABI = 3;
const ADDON_FILE = "enclave_kernels.node";

/** Where the build script leaves the addon, relative to this module (same depth in src/ and dist/). */
export const NATIVE_ADDON_PATH = fileURLToPath(
  new URL(`../../native/build/Release/${ADDON_FILE}`, import.meta.url),
);

export type NativeStatus =
  | { readonly available: true; readonly paths: readonly string[]; readonly hardwareThreads: number }
  | { readonly available: false; readonly reason: string };

let loaded: { addon: NativeAddon | null; status: NativeStatus } | undefined;

function loadAddon(): { addon: NativeAddon | null; status: NativeStatus } {
  if (loaded) return loaded;
  try {
    const require = createRequire(import.meta.url);
    const addon = require(NATIVE_ADDON_PATH) as NativeAddon;
    if (addon.abi !== ADDON_ABI || typeof addon.create !== "function" || typeof addon.paths !== "function") {
      loaded = {
        addon: null,
        status: { available: false, reason: "native addon is from another version; rebuild it" },
      };
    } else {
      loaded = {
        addon,
        status: { available: true, paths: addon.paths(), hardwareThreads: addon.hardwareThreads() },
      };
    }
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    const reason =
      code === "MODULE_NOT_FOUND"
        ? "native addon is not built (no C++ toolchain at install time?)"
        : `native addon failed to load (${typeof code === "string" ? code : "load error"})`;
    loaded = { addon: null, status: { available: false, reason } };
  }
  return loaded;
}

/** Whether the native addon loads here, and which CPU paths it offers. Loads it at most once. */
export function nativeStatus(): NativeStatus {
  return loadAddon().status;
}

/**
 * Kernels backed by the C++ addon. Arguments are checked here (same errors as the TypeScript
 * backend) and again in C++; Float32Arrays are used in place, never copied.
 */
export class NativeKernels implements Kernels {
  readonly name: string;
  /** The instruction-set path in use: "avx512", "avx2-fma" or "generic". */
  readonly cpuPath: string;
  private readonly ops: NativeOps;
  private readonly geometry = new Int32Array(12);

  /** Use `loadKernels` or `NativeKernels.create`; this wraps an addon object. */
  private constructor(ops: NativeOps) {
    this.ops = ops;
    this.cpuPath = ops.path;
    this.name = `native-${ops.path}`;
  }

  /** Returns null when the addon is unavailable or `cpuPath` is not supported on this CPU. */
  static create(cpuPath: string | undefined, threads: number): NativeKernels | null {
    const { addon, status } = loadAddon();
    if (!addon || !status.available) return null;
    const path = cpuPath ?? status.paths[0];
    if (!status.paths.includes(path)) return null;
    return new NativeKernels(addon.create(path, threads));
  }

  /** Threads a large gemm may use (the calling thread included). */
  get threads(): number {
    return this.ops.threads();
  }

  setThreads(n: number): void {
    this.ops.setThreads(n);
  }

  gemm(
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
    checkGemm(transA, transB, m, n, k, a, b, c, beta);
    this.ops.gemm(transA, transB, m, n, k, a, b, c, beta);
  }

  rowSumSquares(x: Float32Array, rows: number, cols: number, out: Float64Array): void {
    checkRowSumSquares(x, rows, cols, out);
    this.ops.rowSumSquares(x, rows, cols, out);
  }

  addRowVector(x: Float32Array, rows: number, cols: number, v: Float32Array): void {
    checkAddRowVector(x, rows, cols, v);
    this.ops.addRowVector(x, rows, cols, v);
  }

  colSum(
    x: Float32Array,
    rows: number,
    cols: number,
    w: Float32Array | null,
    out: Float32Array,
    beta: number,
  ): void {
    checkColSum(x, rows, cols, w, out, beta);
    this.ops.colSum(x, rows, cols, w, out, beta);
  }

  scaleRows(x: Float32Array, rows: number, cols: number, s: Float32Array, out: Float32Array): void {
    checkScaleRows(x, rows, cols, s, out);
    this.ops.scaleRows(x, rows, cols, s, out);
  }

  axpy(alpha: number, x: Float32Array, y: Float32Array): void {
    checkAxpy(alpha, x, y);
    this.ops.axpy(alpha, x, y);
  }

  activation(kind: ActivationKind, x: Float32Array, out: Float32Array): void {
    checkActivation(kind, x, out);
    this.ops.activation(ACTIVATION_CODES[kind], x, out);
  }

  activationBackward(kind: ActivationKind, x: Float32Array, dy: Float32Array, out: Float32Array): void {
    checkActivationBackward(kind, x, dy, out);
    this.ops.activationBackward(ACTIVATION_CODES[kind], x, dy, out);
  }

  softmaxCrossEntropy(
    logits: Float32Array,
    labels: Int32Array,
    rows: number,
    classes: number,
    loss: Float64Array,
    grad: Float32Array,
  ): void {
    checkSoftmaxCrossEntropy(logits, labels, rows, classes, loss, grad);
    this.ops.softmaxCrossEntropy(logits, labels, rows, classes, loss, grad);
  }

  addGaussianNoise(y: Float32Array, std: number, uniform: Uint32Array): void {
    checkAddGaussianNoise(y, std, uniform);
    this.ops.addGaussianNoise(y, std, uniform);
  }

  im2col(x: Float32Array, rows: number, g: ConvGeometry, cols: Float32Array): void {
    checkIm2col(x, rows, g, cols);
    this.ops.im2col(x, rows, packGeometry(g, this.geometry), cols);
  }

  col2im(cols: Float32Array, rows: number, g: ConvGeometry, dx: Float32Array): void {
    checkCol2im(cols, rows, g, dx);
    this.ops.col2im(cols, rows, packGeometry(g, this.geometry), dx);
  }

  maxPool2d(x: Float32Array, rows: number, g: ConvGeometry, y: Float32Array, argmax: Int32Array): void {
    checkMaxPool2d(x, rows, g, y, argmax);
    this.ops.maxPool2d(x, rows, packGeometry(g, this.geometry), y, argmax);
  }

  maxPool2dBackward(
    dy: Float32Array,
    rows: number,
    g: ConvGeometry,
    argmax: Int32Array,
    dx: Float32Array,
  ): void {
    checkMaxPool2dBackward(dy, rows, g, argmax, dx);
    this.ops.maxPool2dBackward(dy, rows, packGeometry(g, this.geometry), argmax, dx);
  }

  temperedSigmoid(x: Float32Array, t: TemperedSigmoid, out: Float32Array): void {
    checkTemperedSigmoid(x, t, out);
    this.ops.temperedSigmoid(x, t.scale, t.inverseTemperature, t.offset, out);
  }

  temperedSigmoidBackward(y: Float32Array, dy: Float32Array, t: TemperedSigmoid, out: Float32Array): void {
    checkTemperedSigmoidBackward(y, dy, t, out);
    this.ops.temperedSigmoidBackward(y, dy, t.scale, t.inverseTemperature, t.offset, out);
  }

  transposeBlocks(x: Float32Array, rows: number, a: number, b: number, out: Float32Array): void {
    checkTransposeBlocks(x, rows, a, b, out);
    this.ops.transposeBlocks(x, rows, a, b, out);
  }
}
