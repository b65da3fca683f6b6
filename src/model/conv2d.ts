import type { RandomSource } from "../random.js";
import { convOutput, type ConvGeometry, type Kernels } from "../tensor/kernels.js";
import type { Layer } from "./layers.js";
import { parameter, Scratch, type Parameter } from "./parameter.js";

/**
 * How a layer gets per-example gradient norms: "ghost" never forms a per-example gradient
 * (‖G_iᵀU_i‖² = ⟨U_iU_iᵀ, G_iG_iᵀ⟩ over output positions), "explicit" forms each one (and reuses
 * it for the weighted sum), "auto" takes whichever costs fewer flops for the layer's shape.
 */
export type NormMethod = "auto" | "ghost" | "explicit";

export interface Conv2dOptions {
  inChannels: number;
  outChannels: number;
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
  bias: boolean;
}

/**
 * 2-D convolution over [channels, height, width] examples, as im2col + gemm per example and
 * group. Weight [out, in/groups, kh, kw] and bias [out] in PyTorch's layout and names.
 * Per-example gradient of group g: ∇W_g ℓ_i = G_i U_iᵀ with G_i = dℓ_i/dy [out/groups, P] and
 * U_i the unfolded input [in/groups·kh·kw, P] (P output positions).
 */
export class Conv2dLayer implements Layer {
  readonly params: Parameter[];
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly outWidth: number;
  normMethod: NormMethod = "auto";
  readonly geometry: ConvGeometry;
  private readonly positions: number;
  private readonly patch: number;
  private readonly groupPatch: number;
  private readonly groupOut: number;
  private readonly wViews: Float32Array[];
  private readonly gViews: Float32Array[];
  private dy: Float32Array = new Float32Array(0);
  private explicitReady = false;
  private readonly cols = new Scratch();
  private readonly dcols = new Scratch();
  private readonly out = new Scratch();
  private readonly dx = new Scratch();
  private readonly scaled = new Scratch();
  private readonly perExample = new Scratch();
  private readonly gram = new Scratch();

  constructor(
    private readonly k: Kernels,
    prefix: string,
    inShape: readonly number[],
    private readonly o: Conv2dOptions,
  ) {
    this.geometry = {
      channels: inShape[0],
      height: inShape[1],
      width: inShape[2],
      kernelH: o.kernel[0],
      kernelW: o.kernel[1],
      strideH: o.stride[0],
      strideW: o.stride[1],
      padH: o.padding[0],
      padW: o.padding[1],
      dilationH: o.dilation[0],
      dilationW: o.dilation[1],
    };
    const { outH, outW } = convOutput(this.geometry);
    this.positions = outH * outW;
    this.outWidth = o.outChannels * this.positions;
    this.patch = o.inChannels * o.kernel[0] * o.kernel[1];
    this.groupPatch = this.patch / o.groups;
    this.groupOut = o.outChannels / o.groups;
    this.weight = parameter(`${prefix}.weight`, [o.outChannels, o.inChannels / o.groups, ...o.kernel]);
    this.bias = o.bias ? parameter(`${prefix}.bias`, [o.outChannels]) : null;
    this.params = this.bias ? [this.weight, this.bias] : [this.weight];
    const per = this.groupOut * this.groupPatch;
    this.wViews = Array.from({ length: o.groups }, (_, g) =>
      this.weight.data.subarray(g * per, (g + 1) * per),
    );
    this.gViews = Array.from({ length: o.groups }, (_, g) =>
      this.weight.grad.subarray(g * per, (g + 1) * per),
    );
  }

  /** PyTorch's default init: U(-1/√fan_in, 1/√fan_in), fan_in = in/groups·kh·kw. */
  init(rng: RandomSource): void {
    const bound = 1 / Math.sqrt(this.groupPatch);
    for (const p of this.params)
      for (let i = 0; i < p.data.length; i++) p.data[i] = (2 * rng.uniform() - 1) * bound;
  }

  /** U_i of group g: [in/groups·kh·kw, P]. */
  private colsOf(cols: Float32Array, n: number, g: number): Float32Array {
    const at = (n * this.patch + g * this.groupPatch) * this.positions;
    return cols.subarray(at, at + this.groupPatch * this.positions);
  }

  /** Output (or its gradient) of example n, group g: [out/groups, P]. */
  private outOf(y: Float32Array, n: number, g: number): Float32Array {
    const at = (n * this.o.outChannels + g * this.groupOut) * this.positions;
    return y.subarray(at, at + this.groupOut * this.positions);
  }

  forward(x: Float32Array, rows: number): Float32Array {
    const P = this.positions;
    const cols = this.cols.view(rows * this.patch * P);
    this.k.im2col(x, rows, this.geometry, cols);
    const y = this.out.view(rows * this.outWidth);
    for (let n = 0; n < rows; n++)
      for (let g = 0; g < this.o.groups; g++)
        this.k.gemm(
          false,
          false,
          this.groupOut,
          P,
          this.groupPatch,
          this.wViews[g],
          this.colsOf(cols, n, g),
          this.outOf(y, n, g),
          0,
        );
    if (this.bias) {
      const b = this.bias.data;
      for (let n = 0, at = 0; n < rows; n++)
        for (let c = 0; c < this.o.outChannels; c++) {
          const v = b[c];
          for (let end = at + P; at < end; at++) y[at] += v;
        }
    }
    return y;
  }

  backward(dy: Float32Array, rows: number, needInputGrad: boolean): Float32Array | null {
    this.dy = dy;
    this.explicitReady = false;
    if (!needInputGrad) return null;
    const P = this.positions;
    const dcols = this.dcols.view(rows * this.patch * P);
    for (let n = 0; n < rows; n++)
      for (let g = 0; g < this.o.groups; g++)
        this.k.gemm(
          true,
          false,
          this.groupPatch,
          P,
          this.groupOut,
          this.wViews[g],
          this.outOf(dy, n, g),
          this.colsOf(dcols, n, g),
          0,
        );
    const dx = this.dx.view(rows * this.geometry.channels * this.geometry.height * this.geometry.width);
    this.k.col2im(dcols, rows, this.geometry, dx);
    return dx;
  }

  /** Ghost costs P²(patch + out) flops per group and example, explicit P·patch·out. */
  get usesGhostNorm(): boolean {
    if (this.normMethod !== "auto") return this.normMethod === "ghost";
    return this.positions * (this.groupPatch + this.groupOut) < this.groupPatch * this.groupOut;
  }

  addPerExampleSqNorms(rows: number, out: Float64Array): void {
    const ghost = this.usesGhostNorm;
    const cols = this.cols.view(rows * this.patch * this.positions);
    const grads = ghost ? null : this.perExample.view(rows * this.weight.data.length);
    for (let n = 0; n < rows; n++) {
      let s = 0;
      for (let g = 0; g < this.o.groups; g++)
        s += grads ? this.explicitSqNorm(cols, grads, n, g) : this.ghostSqNorm(cols, n, g);
      out[n] += s + this.biasSqNorm(n);
    }
    this.explicitReady = !ghost;
  }

  private ghostSqNorm(cols: Float32Array, n: number, g: number): number {
    const P = this.positions;
    const gram = this.gram.view(2 * P * P);
    const a = gram.subarray(0, P * P);
    const b = gram.subarray(P * P);
    const u = this.colsOf(cols, n, g);
    const d = this.outOf(this.dy, n, g);
    this.k.gemm(true, false, P, P, this.groupPatch, u, u, a, 0);
    this.k.gemm(true, false, P, P, this.groupOut, d, d, b, 0);
    let s = 0;
    for (let j = 0; j < P * P; j++) s += a[j] * b[j];
    return s;
  }

  /** Writes ∇W_g ℓ_n into `grads` (kept for writeGrads) and returns its squared norm. */
  private explicitSqNorm(cols: Float32Array, all: Float32Array, n: number, g: number): number {
    const per = this.groupOut * this.groupPatch;
    const at = n * this.weight.data.length + g * per;
    const grad = all.subarray(at, at + per);
    this.k.gemm(
      false,
      true,
      this.groupOut,
      this.groupPatch,
      this.positions,
      this.outOf(this.dy, n, g),
      this.colsOf(cols, n, g),
      grad,
      0,
    );
    let s = 0;
    for (let j = 0; j < per; j++) s += grad[j] * grad[j];
    return s;
  }

  private biasSqNorm(n: number): number {
    if (!this.bias) return 0;
    const P = this.positions;
    let s = 0;
    for (let c = 0, at = n * this.outWidth; c < this.o.outChannels; c++) {
      let t = 0;
      for (let end = at + P; at < end; at++) t += this.dy[at];
      s += t * t;
    }
    return s;
  }

  writeGrads(rows: number, w: Float32Array | null): void {
    if (this.explicitReady) {
      const numel = this.weight.data.length;
      this.k.colSum(this.perExample.view(rows * numel), rows, numel, w, this.weight.grad, 0);
    } else this.writeWeightGradsByGemm(rows, w);
    if (this.bias) this.writeBiasGrad(rows, w);
  }

  private writeWeightGradsByGemm(rows: number, w: Float32Array | null): void {
    if (rows === 0) this.weight.grad.fill(0);
    let dy = this.dy;
    if (w) {
      dy = this.scaled.view(rows * this.outWidth);
      this.k.scaleRows(this.dy, rows, this.outWidth, w, dy);
    }
    const cols = this.cols.view(rows * this.patch * this.positions);
    for (let g = 0; g < this.o.groups; g++)
      for (let n = 0; n < rows; n++)
        this.k.gemm(
          false,
          true,
          this.groupOut,
          this.groupPatch,
          this.positions,
          this.outOf(dy, n, g),
          this.colsOf(cols, n, g),
          this.gViews[g],
          n === 0 ? 0 : 1,
        );
  }

  private writeBiasGrad(rows: number, w: Float32Array | null): void {
    const grad = this.bias!.grad;
    grad.fill(0);
    const P = this.positions;
    for (let n = 0, at = 0; n < rows; n++) {
      const wn = w ? w[n] : 1;
      for (let c = 0; c < this.o.outChannels; c++) {
        let t = 0;
        for (let end = at + P; at < end; at++) t += this.dy[at];
        grad[c] += wn * t;
      }
    }
  }
}
