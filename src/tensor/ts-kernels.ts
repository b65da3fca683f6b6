import {
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
import { col2imTs, im2colTs } from "./im2col.js";
import type { ActivationKind, ConvGeometry, Kernels, TemperedSigmoid } from "./kernels.js";
import {
  maxPool2dBackwardTs,
  maxPool2dTs,
  temperedSigmoidBackwardTs,
  temperedSigmoidTs,
  transposeBlocksTs,
} from "./pool.js";

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_C = 0.044715;
const TWO_POW_M32 = 1 / 4294967296;
const TWO_POW_M53 = 1 / 9007199254740992;

/**
 * Copies an x-by-k operand X (X(i, p) = src[i*rs + p*cs]) into panels of 4 rows: panel q holds,
 * for each p, X(4q..4q+3, p); rows past x are zero.
 */
function packPanels(
  src: Float32Array,
  rs: number,
  cs: number,
  x: number,
  k: number,
  dst: Float64Array,
): void {
  const panels = (x + 3) >> 2;
  for (let q = 0; q < panels; q++) {
    const base = q * 4 * k;
    const i0 = q * 4;
    const rows = Math.min(4, x - i0);
    if (rows === 4) {
      const s0 = i0 * rs,
        s1 = s0 + rs,
        s2 = s1 + rs,
        s3 = s2 + rs;
      for (let p = 0, d = base; p < k; p++, d += 4) {
        const o = p * cs;
        dst[d] = src[s0 + o];
        dst[d + 1] = src[s1 + o];
        dst[d + 2] = src[s2 + o];
        dst[d + 3] = src[s3 + o];
      }
    } else {
      for (let p = 0, d = base; p < k; p++, d += 4)
        for (let r = 0; r < 4; r++) dst[d + r] = r < rows ? src[(i0 + r) * rs + p * cs] : 0;
    }
  }
}

/**
 * t = 4x4 block of Σ_p A(:, p) B(p, :) over packed panels; the 16 sums stay in registers
 * (doubles, so the sum is more accurate than float32).
 */
// prettier-ignore
function kernel4x4(pa: Float64Array, ai: number, pb: Float64Array, bj: number, k: number, t: Float64Array): void {
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  for (let p = 0; p < k; p++, ai += 4, bj += 4) {
    const a0 = pa[ai], a1 = pa[ai + 1], a2 = pa[ai + 2], a3 = pa[ai + 3];
    const b0 = pb[bj], b1 = pb[bj + 1], b2 = pb[bj + 2], b3 = pb[bj + 3];
    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
  }
  t[0] = c00; t[1] = c01; t[2] = c02; t[3] = c03; t[4] = c10; t[5] = c11; t[6] = c12; t[7] = c13;
  t[8] = c20; t[9] = c21; t[10] = c22; t[11] = c23; t[12] = c30; t[13] = c31; t[14] = c32; t[15] = c33;
}

/** Portable TypeScript backend: the fallback where no native build is available (no compiler, other OS). */
export class TypeScriptKernels implements Kernels {
  readonly name: string = "typescript";
  // Packing scratch, grown on demand: kernels run synchronously, one call at a time per instance.
  private pa = new Float64Array(0);
  private pb = new Float64Array(0);
  private readonly tile = new Float64Array(16);

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
    if (m === 0 || n === 0) return;
    if (k === 0) {
      if (beta === 0) c.fill(0, 0, m * n);
      else if (beta !== 1) for (let i = 0; i < m * n; i++) c[i] *= beta;
      return;
    }
    // Pack op(A) into 4-row panels and op(B) into 4-column panels (zero-padded), so the
    // register kernel below reads both sequentially whatever the transposes.
    const mp = (m + 3) >> 2;
    const np = (n + 3) >> 2;
    const pa = this.packA(mp * 4 * k);
    const pb = this.packB(np * 4 * k);
    packPanels(a, transA ? 1 : k, transA ? m : 1, m, k, pa);
    packPanels(b, transB ? k : 1, transB ? 1 : n, n, k, pb);
    for (let ib = 0; ib < mp; ib++) {
      const i0 = ib * 4;
      const rows = Math.min(4, m - i0);
      const aBase = ib * 4 * k;
      for (let jb = 0; jb < np; jb++) {
        const j0 = jb * 4;
        const cols = Math.min(4, n - j0);
        kernel4x4(pa, aBase, pb, jb * 4 * k, k, this.tile);
        const t = this.tile;
        for (let r = 0; r < rows; r++) {
          const o = (i0 + r) * n + j0;
          for (let j = 0; j < cols; j++)
            c[o + j] = beta === 0 ? t[r * 4 + j] : beta * c[o + j] + t[r * 4 + j];
        }
      }
    }
  }

  private packA(size: number): Float64Array {
    if (this.pa.length < size) this.pa = new Float64Array(size);
    return this.pa;
  }

  private packB(size: number): Float64Array {
    if (this.pb.length < size) this.pb = new Float64Array(size);
    return this.pb;
  }

  rowSumSquares(x: Float32Array, rows: number, cols: number, out: Float64Array): void {
    checkRowSumSquares(x, rows, cols, out);
    for (let i = 0; i < rows; i++) {
      let s = 0;
      const o = i * cols;
      for (let j = 0; j < cols; j++) s += x[o + j] * x[o + j];
      out[i] = s;
    }
  }

  addRowVector(x: Float32Array, rows: number, cols: number, v: Float32Array): void {
    checkAddRowVector(x, rows, cols, v);
    for (let i = 0; i < rows; i++) {
      const o = i * cols;
      for (let j = 0; j < cols; j++) x[o + j] += v[j];
    }
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
    const acc = new Float64Array(cols);
    for (let i = 0; i < rows; i++) {
      const wi = w ? w[i] : 1;
      const o = i * cols;
      for (let j = 0; j < cols; j++) acc[j] += wi * x[o + j];
    }
    for (let j = 0; j < cols; j++) out[j] = (beta === 0 ? 0 : beta * out[j]) + acc[j];
  }

  scaleRows(x: Float32Array, rows: number, cols: number, s: Float32Array, out: Float32Array): void {
    checkScaleRows(x, rows, cols, s, out);
    for (let i = 0; i < rows; i++) {
      const o = i * cols;
      const si = s[i];
      for (let j = 0; j < cols; j++) out[o + j] = x[o + j] * si;
    }
  }

  axpy(alpha: number, x: Float32Array, y: Float32Array): void {
    checkAxpy(alpha, x, y);
    for (let i = 0; i < x.length; i++) y[i] += alpha * x[i];
  }

  activation(kind: ActivationKind, x: Float32Array, out: Float32Array): void {
    checkActivation(kind, x, out);
    const n = x.length;
    switch (kind) {
      case "relu":
        for (let i = 0; i < n; i++) out[i] = x[i] > 0 ? x[i] : 0;
        return;
      case "tanh":
        for (let i = 0; i < n; i++) out[i] = Math.tanh(x[i]);
        return;
      case "gelu":
        // tanh approximation (PyTorch approximate="tanh").
        for (let i = 0; i < n; i++) {
          const v = x[i];
          out[i] = 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + GELU_C * v * v * v)));
        }
        return;
    }
  }

  activationBackward(kind: ActivationKind, x: Float32Array, dy: Float32Array, out: Float32Array): void {
    checkActivationBackward(kind, x, dy, out);
    const n = x.length;
    switch (kind) {
      case "relu":
        for (let i = 0; i < n; i++) out[i] = x[i] > 0 ? dy[i] : 0;
        return;
      case "tanh":
        for (let i = 0; i < n; i++) {
          const t = Math.tanh(x[i]);
          out[i] = dy[i] * (1 - t * t);
        }
        return;
      case "gelu":
        for (let i = 0; i < n; i++) {
          const v = x[i];
          const u = SQRT_2_OVER_PI * (v + GELU_C * v * v * v);
          const t = Math.tanh(u);
          const du = SQRT_2_OVER_PI * (1 + 3 * GELU_C * v * v);
          out[i] = dy[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du);
        }
        return;
    }
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
    for (let i = 0; i < rows; i++) {
      const o = i * classes;
      let max = -Infinity;
      for (let c = 0; c < classes; c++) if (logits[o + c] > max) max = logits[o + c];
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += Math.exp(logits[o + c] - max);
      const logSum = Math.log(sum) + max;
      const y = labels[i];
      loss[i] = logSum - logits[o + y];
      for (let c = 0; c < classes; c++) grad[o + c] = Math.exp(logits[o + c] - logSum) - (c === y ? 1 : 0);
    }
  }

  addGaussianNoise(y: Float32Array, std: number, uniform: Uint32Array): void {
    checkAddGaussianNoise(y, std, uniform);
    const n = y.length;
    for (let i = 0, w = 0; i < n; i += 2, w += 3) {
      // 53 random bits: (a·2^21 + (b >>> 11) + 1) / 2^53 lies in (0, 1], so the log is finite.
      const u1 = (uniform[w] * 2097152 + (uniform[w + 1] >>> 11) + 1) * TWO_POW_M53;
      const u2 = uniform[w + 2] * TWO_POW_M32;
      const r = std * Math.sqrt(-2 * Math.log(u1));
      const theta = 2 * Math.PI * u2;
      y[i] += r * Math.cos(theta);
      if (i + 1 < n) y[i + 1] += r * Math.sin(theta);
    }
  }

  im2col(x: Float32Array, rows: number, g: ConvGeometry, cols: Float32Array): void {
    checkIm2col(x, rows, g, cols);
    im2colTs(x, rows, g, cols);
  }

  col2im(cols: Float32Array, rows: number, g: ConvGeometry, dx: Float32Array): void {
    checkCol2im(cols, rows, g, dx);
    col2imTs(cols, rows, g, dx);
  }

  maxPool2d(x: Float32Array, rows: number, g: ConvGeometry, y: Float32Array, argmax: Int32Array): void {
    checkMaxPool2d(x, rows, g, y, argmax);
    maxPool2dTs(x, rows, g, y, argmax);
  }

  maxPool2dBackward(
    dy: Float32Array,
    rows: number,
    g: ConvGeometry,
    argmax: Int32Array,
    dx: Float32Array,
  ): void {
    checkMaxPool2dBackward(dy, rows, g, argmax, dx);
    maxPool2dBackwardTs(dy, rows, g, argmax, dx);
  }

  temperedSigmoid(x: Float32Array, t: TemperedSigmoid, out: Float32Array): void {
    checkTemperedSigmoid(x, t, out);
    temperedSigmoidTs(x, t, out);
  }

  temperedSigmoidBackward(y: Float32Array, dy: Float32Array, t: TemperedSigmoid, out: Float32Array): void {
    checkTemperedSigmoidBackward(y, dy, t, out);
    temperedSigmoidBackwardTs(y, dy, t, out);
  }

  transposeBlocks(x: Float32Array, rows: number, a: number, b: number, out: Float32Array): void {
    checkTransposeBlocks(x, rows, a, b, out);
    transposeBlocksTs(x, rows, a, b, out);
  }
}
