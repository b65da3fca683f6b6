import { EnclaveError } from "../errors.js";
import type { RandomSource } from "../random.js";
import { convOutput, type ConvGeometry, type Kernels, type TemperedSigmoid } from "../tensor/kernels.js";
import type { Layer } from "./layers.js";
import { parameter, Scratch, type Parameter } from "./parameter.js";

/** A layer without parameters: nothing to report for clipping. */
abstract class ParameterFreeLayer {
  readonly params: Parameter[] = [];
  addPerExampleSqNorms(): void {}
  writeGrads(): void {}
}

/** The in-image window of output (oy, ox): rows [y0, y1), columns [x0, x1). */
interface PoolPlan {
  readonly g: ConvGeometry;
  readonly outH: number;
  readonly outW: number;
  /** Per output row: y0, y1; per output column: x0, x1 (clipped to the image). */
  readonly ys: Int32Array;
  readonly xs: Int32Array;
}

function poolPlan(
  inShape: readonly number[],
  kernel: [number, number],
  stride: [number, number],
  padding: [number, number],
): PoolPlan {
  const g: ConvGeometry = {
    channels: inShape[0],
    height: inShape[1],
    width: inShape[2],
    kernelH: kernel[0],
    kernelW: kernel[1],
    strideH: stride[0],
    strideW: stride[1],
    padH: padding[0],
    padW: padding[1],
    dilationH: 1,
    dilationW: 1,
    groups: 1,
  };
  const { outH, outW } = convOutput(g);
  const clip = (out: number, s: number, p: number, k: number, size: number) => {
    const r = new Int32Array(2 * out);
    for (let o = 0; o < out; o++) {
      const a = o * s - p;
      r[2 * o] = Math.max(0, a);
      r[2 * o + 1] = Math.min(size, a + k);
    }
    return r;
  };
  return {
    g,
    outH,
    outW,
    ys: clip(outH, g.strideH, g.padH, g.kernelH, g.height),
    xs: clip(outW, g.strideW, g.padW, g.kernelW, g.width),
  };
}

/** Max over each window (padding counts as −∞, as in PyTorch); the gradient goes to the first maximum. */
export class MaxPool2dLayer extends ParameterFreeLayer implements Layer {
  readonly outWidth: number;
  private readonly plan: PoolPlan;
  private argmax = new Int32Array(0);
  private readonly out = new Scratch();
  private readonly dx = new Scratch();

  constructor(
    private readonly k: Kernels,
    inShape: readonly number[],
    kernel: [number, number],
    stride: [number, number],
    padding: [number, number],
  ) {
    super();
    this.plan = poolPlan(inShape, kernel, stride, padding);
    this.outWidth = inShape[0] * this.plan.outH * this.plan.outW;
  }

  forward(x: Float32Array, rows: number): Float32Array {
    const y = this.out.view(rows * this.outWidth);
    if (this.argmax.length < rows * this.outWidth) this.argmax = new Int32Array(rows * this.outWidth);
    this.k.maxPool2d(x, rows, this.plan.g, y, this.argmax);
    return y;
  }

  backward(dy: Float32Array, rows: number, needInputGrad: boolean): Float32Array | null {
    if (!needInputGrad) return null;
    const g = this.plan.g;
    const dx = this.dx.view(rows * g.channels * g.height * g.width);
    this.k.maxPool2dBackward(dy, rows, g, this.argmax, dx);
    return dx;
  }
}

/** Mean over each window; the divisor is kh·kw with count_include_pad (PyTorch's default), else the in-image count. */
export class AvgPool2dLayer extends ParameterFreeLayer implements Layer {
  readonly outWidth: number;
  private readonly plan: PoolPlan;
  private readonly out = new Scratch();
  private readonly dx = new Scratch();

  constructor(
    inShape: readonly number[],
    kernel: [number, number],
    stride: [number, number],
    padding: [number, number],
    private readonly countIncludePad: boolean,
  ) {
    super();
    this.plan = poolPlan(inShape, kernel, stride, padding);
    this.outWidth = inShape[0] * this.plan.outH * this.plan.outW;
  }

  private divisor(oy: number, ox: number): number {
    const { g, ys, xs } = this.plan;
    if (this.countIncludePad) return g.kernelH * g.kernelW;
    return (ys[2 * oy + 1] - ys[2 * oy]) * (xs[2 * ox + 1] - xs[2 * ox]);
  }

  /** forward: y[o] = mean of the window; adjoint: dx[window] += dy[o] / divisor. */
  private sweep(image: Float32Array, rows: number, y: Float32Array, adjoint: boolean): void {
    const { g, outH, outW, ys, xs } = this.plan;
    const W = g.width;
    let o = 0;
    for (let nc = 0; nc < rows * g.channels; nc++) {
      const base = nc * g.height * W;
      for (let oy = 0; oy < outH; oy++)
        for (let ox = 0; ox < outW; ox++, o++) {
          const inv = 1 / this.divisor(oy, ox);
          let s = 0;
          const share = adjoint ? y[o] * inv : 0;
          for (let r = ys[2 * oy]; r < ys[2 * oy + 1]; r++)
            for (let i = base + r * W + xs[2 * ox], end = base + r * W + xs[2 * ox + 1]; i < end; i++) {
              if (adjoint) image[i] += share;
              else s += image[i];
            }
          if (!adjoint) y[o] = s * inv;
        }
    }
  }

  forward(x: Float32Array, rows: number): Float32Array {
    const y = this.out.view(rows * this.outWidth);
    this.sweep(x, rows, y, false);
    return y;
  }

  backward(dy: Float32Array, rows: number, needInputGrad: boolean): Float32Array | null {
    if (!needInputGrad) return null;
    const g = this.plan.g;
    const dx = this.dx.view(rows * g.channels * g.height * g.width);
    dx.fill(0);
    this.sweep(dx, rows, dy, true);
    return dx;
  }
}

/** Reshape only: the rows are already contiguous, row-major. */
export class FlattenLayer extends ParameterFreeLayer implements Layer {
  constructor(readonly outWidth: number) {
    super();
  }
  forward(x: Float32Array): Float32Array {
    return x;
  }
  backward(dy: Float32Array, _rows: number, needInputGrad: boolean): Float32Array | null {
    return needInputGrad ? dy : null;
  }
}

/** y = s·σ(T·x) − o (Papernot et al., "Tempered sigmoid activations for deep learning with DP"). */
export class TemperedSigmoidLayer extends ParameterFreeLayer implements Layer {
  private readonly t: TemperedSigmoid;
  private y: Float32Array = new Float32Array(0);
  private readonly out = new Scratch();
  private readonly dx = new Scratch();

  constructor(
    private readonly k: Kernels,
    readonly outWidth: number,
    scale: number,
    inverseTemperature: number,
    offset: number,
  ) {
    super();
    this.t = { scale, inverseTemperature, offset };
  }

  forward(x: Float32Array, rows: number): Float32Array {
    const y = this.out.view(rows * this.outWidth);
    this.k.temperedSigmoid(x.subarray(0, rows * this.outWidth), this.t, y);
    this.y = y;
    return y;
  }

  backward(dy: Float32Array, rows: number, needInputGrad: boolean): Float32Array | null {
    if (!needInputGrad) return null;
    const dx = this.dx.view(rows * this.outWidth);
    this.k.temperedSigmoidBackward(this.y, dy, this.t, dx);
    return dx;
  }
}

/**
 * GroupNorm over [channels, ...spatial] examples: each example's channels split into groups,
 * each group normalised over its channels and positions, then γ[c]·x̂ + β[c]. Every example is
 * normalised on its own, so per-example gradients exist; they are small ([channels]) and explicit.
 */
export class GroupNormLayer implements Layer {
  readonly params: Parameter[];
  readonly gamma: Parameter | null;
  readonly beta: Parameter | null;
  readonly outWidth: number;
  private readonly spatial: number;
  private readonly groupSize: number;
  private readonly xhat = new Scratch();
  private readonly rstd = new Scratch();
  private readonly out = new Scratch();
  private readonly dx = new Scratch();
  private readonly gGamma = new Scratch();
  private readonly gBeta = new Scratch();

  constructor(
    private readonly k: Kernels,
    prefix: string,
    inShape: readonly number[],
    private readonly groups: number,
    private readonly eps: number,
    affine: boolean,
  ) {
    const channels = inShape[0];
    this.outWidth = inShape.reduce((a, b) => a * b, 1);
    this.spatial = this.outWidth / channels;
    this.groupSize = (channels / groups) * this.spatial;
    this.gamma = affine ? parameter(`${prefix}.weight`, [channels]) : null;
    this.beta = affine ? parameter(`${prefix}.bias`, [channels]) : null;
    this.gamma?.data.fill(1);
    this.params = this.gamma && this.beta ? [this.gamma, this.beta] : [];
  }

  private get channels(): number {
    return this.outWidth / this.spatial;
  }

  forward(x: Float32Array, rows: number): Float32Array {
    const n = rows * this.outWidth;
    const xhat = this.xhat.view(n);
    const rstd = this.rstd.view(rows * this.groups);
    const y = this.out.view(n);
    const m = this.groupSize;
    for (let q = 0; q < rows * this.groups; q++) {
      const at = q * m;
      let mean = 0;
      for (let j = at; j < at + m; j++) mean += x[j];
      mean /= m;
      let v = 0;
      for (let j = at; j < at + m; j++) v += (x[j] - mean) * (x[j] - mean);
      const r = 1 / Math.sqrt(v / m + this.eps);
      rstd[q] = r;
      for (let j = at; j < at + m; j++) xhat[j] = (x[j] - mean) * r;
    }
    this.affine(xhat, rows, y);
    return y;
  }

  private affine(xhat: Float32Array, rows: number, y: Float32Array): void {
    const S = this.spatial;
    for (let n = 0, at = 0; n < rows; n++)
      for (let c = 0; c < this.channels; c++) {
        const g = this.gamma ? this.gamma.data[c] : 1;
        const b = this.beta ? this.beta.data[c] : 0;
        for (let end = at + S; at < end; at++) y[at] = g * xhat[at] + b;
      }
  }

  backward(dy: Float32Array, rows: number, needInputGrad: boolean): Float32Array | null {
    this.perExampleGrads(dy, rows);
    if (!needInputGrad) return null;
    const n = rows * this.outWidth;
    const xhat = this.xhat.view(n);
    const rstd = this.rstd.view(rows * this.groups);
    const dx = this.dx.view(n);
    const S = this.spatial;
    const m = this.groupSize;
    // dx̂ = dy·γ;  dx = rstd · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ x̂)) over the group.
    for (let j = 0; j < n; j++)
      dx[j] = this.gamma ? dy[j] * this.gamma.data[Math.floor(j / S) % this.channels] : dy[j];
    for (let q = 0; q < rows * this.groups; q++) {
      const at = q * m;
      let a = 0;
      let b = 0;
      for (let j = at; j < at + m; j++) {
        a += dx[j];
        b += dx[j] * xhat[j];
      }
      a /= m;
      b /= m;
      for (let j = at; j < at + m; j++) dx[j] = rstd[q] * (dx[j] - a - xhat[j] * b);
    }
    return dx;
  }

  /** ∇γ ℓ_i[c] = Σ_s dy·x̂ and ∇β ℓ_i[c] = Σ_s dy, per example. */
  private perExampleGrads(dy: Float32Array, rows: number): void {
    if (!this.gamma) return;
    const C = this.channels;
    const S = this.spatial;
    const xhat = this.xhat.view(rows * this.outWidth);
    const gg = this.gGamma.view(rows * C);
    const gb = this.gBeta.view(rows * C);
    for (let q = 0, at = 0; q < rows * C; q++) {
      let a = 0;
      let b = 0;
      for (let end = at + S; at < end; at++) {
        a += dy[at] * xhat[at];
        b += dy[at];
      }
      gg[q] = a;
      gb[q] = b;
    }
  }

  addPerExampleSqNorms(rows: number, out: Float64Array): void {
    if (!this.gamma) return;
    const C = this.channels;
    const gg = this.gGamma.view(rows * C);
    const gb = this.gBeta.view(rows * C);
    for (let n = 0; n < rows; n++) {
      let s = 0;
      for (let j = n * C; j < (n + 1) * C; j++) s += gg[j] * gg[j] + gb[j] * gb[j];
      out[n] += s;
    }
  }

  writeGrads(rows: number, w: Float32Array | null): void {
    if (!this.gamma || !this.beta) return;
    const C = this.channels;
    this.k.colSum(this.gGamma.view(rows * C), rows, C, w, this.gamma.grad, 0);
    this.k.colSum(this.gBeta.view(rows * C), rows, C, w, this.beta.grad, 0);
  }
}

/**
 * Token ids to vectors: input rows of `length` ids (integers in [0, num_embeddings) stored as
 * numbers), output [length, dim]. The per-example gradient touches only the example's tokens:
 * its squared norm is Σ over distinct tokens t of ‖Σ_{positions l with id t} g_l‖², exact without
 * forming the [num_embeddings, dim] gradient.
 */
export class EmbeddingLayer implements Layer {
  readonly params: Parameter[];
  readonly weight: Parameter;
  readonly outWidth: number;
  private ids = new Int32Array(0);
  private dy: Float32Array = new Float32Array(0);
  private readonly out = new Scratch();
  private readonly sums = new Scratch();

  constructor(
    prefix: string,
    private readonly length: number,
    private readonly vocabulary: number,
    private readonly dim: number,
  ) {
    this.weight = parameter(`${prefix}.weight`, [vocabulary, dim]);
    this.params = [this.weight];
    this.outWidth = length * dim;
  }

  /** PyTorch's default init: N(0, 1) (Box-Muller from the seeded stream). */
  init(rng: RandomSource): void {
    const d = this.weight.data;
    for (let i = 0; i < d.length; i += 2) {
      const r = Math.sqrt(-2 * Math.log(1 - rng.uniform()));
      const t = 2 * Math.PI * rng.uniform();
      d[i] = r * Math.cos(t);
      if (i + 1 < d.length) d[i + 1] = r * Math.sin(t);
    }
  }

  forward(x: Float32Array, rows: number): Float32Array {
    const L = this.length;
    if (this.ids.length < rows * L) this.ids = new Int32Array(rows * L);
    for (let j = 0; j < rows * L; j++) {
      const v = x[j];
      if (!Number.isInteger(v) || v < 0 || v >= this.vocabulary)
        throw new EnclaveError(
          "EMBEDDING_INPUT_INVALID",
          `embedding input row ${Math.floor(j / L)} column ${j % L} is not an integer id in [0, num_embeddings)`,
        );
      this.ids[j] = v;
    }
    const y = this.out.view(rows * this.outWidth);
    const d = this.dim;
    for (let j = 0; j < rows * L; j++)
      y.set(this.weight.data.subarray(this.ids[j] * d, (this.ids[j] + 1) * d), j * d);
    return y;
  }

  backward(dy: Float32Array): Float32Array | null {
    this.dy = dy;
    return null;
  }

  addPerExampleSqNorms(rows: number, out: Float64Array): void {
    const L = this.length;
    const d = this.dim;
    const sums = this.sums.view(L * d);
    const first = new Map<number, number>();
    for (let n = 0; n < rows; n++) {
      first.clear();
      // Positions with the same id add up before squaring: sums[first position of id] += g_l.
      for (let l = 0; l < L; l++) {
        const id = this.ids[n * L + l];
        const src = this.dy.subarray((n * L + l) * d, (n * L + l + 1) * d);
        const f = first.get(id);
        if (f === undefined) {
          first.set(id, l);
          sums.set(src, l * d);
        } else for (let e = 0; e < d; e++) sums[f * d + e] += src[e];
      }
      let s = 0;
      for (const f of first.values()) for (let e = f * d; e < (f + 1) * d; e++) s += sums[e] * sums[e];
      out[n] += s;
    }
  }

  writeGrads(rows: number, w: Float32Array | null): void {
    const grad = this.weight.grad;
    grad.fill(0);
    const d = this.dim;
    for (let j = 0; j < rows * this.length; j++) {
      const wn = w ? w[Math.floor(j / this.length)] : 1;
      const at = this.ids[j] * d;
      for (let e = 0; e < d; e++) grad[at + e] += wn * this.dy[j * d + e];
    }
  }
}
