import type { ActivationKind, Kernels } from "./kernels.js";

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_C = 0.044715;
const TWO_POW_M32 = 1 / 4294967296;

/** Portable TypeScript backend: the fallback when no native build is available, and the test oracle. */
export class TypeScriptKernels implements Kernels {
  readonly name: string = "typescript";

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
    if (beta === 0) c.fill(0, 0, m * n);
    else if (beta !== 1) for (let i = 0; i < m * n; i++) c[i] *= beta;
    // i-p-j order keeps the inner loop contiguous in B and C for the common layouts.
    for (let i = 0; i < m; i++) {
      const ci = i * n;
      for (let p = 0; p < k; p++) {
        const aip = transA ? a[p * m + i] : a[i * k + p];
        if (aip === 0) continue;
        if (!transB) {
          const bp = p * n;
          for (let j = 0; j < n; j++) c[ci + j] += aip * b[bp + j];
        } else {
          for (let j = 0; j < n; j++) c[ci + j] += aip * b[j * k + p];
        }
      }
    }
  }

  rowSumSquares(x: Float32Array, rows: number, cols: number, out: Float64Array): void {
    for (let i = 0; i < rows; i++) {
      let s = 0;
      const o = i * cols;
      for (let j = 0; j < cols; j++) s += x[o + j] * x[o + j];
      out[i] = s;
    }
  }

  addRowVector(x: Float32Array, rows: number, cols: number, v: Float32Array): void {
    for (let i = 0; i < rows; i++) {
      const o = i * cols;
      for (let j = 0; j < cols; j++) x[o + j] += v[j];
    }
  }

  colSum(x: Float32Array, rows: number, cols: number, w: Float32Array | null, out: Float32Array, beta: number): void {
    const acc = new Float64Array(cols);
    for (let i = 0; i < rows; i++) {
      const wi = w ? w[i] : 1;
      const o = i * cols;
      for (let j = 0; j < cols; j++) acc[j] += wi * x[o + j];
    }
    for (let j = 0; j < cols; j++) out[j] = (beta === 0 ? 0 : beta * out[j]) + acc[j];
  }

  scaleRows(x: Float32Array, rows: number, cols: number, s: Float32Array, out: Float32Array): void {
    for (let i = 0; i < rows; i++) {
      const o = i * cols;
      const si = s[i];
      for (let j = 0; j < cols; j++) out[o + j] = x[o + j] * si;
    }
  }

  axpy(alpha: number, x: Float32Array, y: Float32Array): void {
    for (let i = 0; i < x.length; i++) y[i] += alpha * x[i];
  }

  activation(kind: ActivationKind, x: Float32Array, out: Float32Array): void {
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
    const n = y.length;
    if (uniform.length < n + (n & 1)) throw new RangeError("addGaussianNoise: not enough random words");
    for (let i = 0; i < n; i += 2) {
      // (w + 1) / 2^32 lies in (0, 1], so the log is finite.
      const u1 = (uniform[i] + 1) * TWO_POW_M32;
      const u2 = uniform[i + 1] * TWO_POW_M32;
      const r = std * Math.sqrt(-2 * Math.log(u1));
      const theta = 2 * Math.PI * u2;
      y[i] += r * Math.cos(theta);
      if (i + 1 < n) y[i + 1] += r * Math.sin(theta);
    }
  }
}
