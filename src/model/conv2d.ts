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
 * 2-D convolution over [channels, height, width] examples as im2col + gemm. Weight
 * [out, in/groups, kh, kw] and bias [out] in PyTorch's layout and names.
 * For example i and group g, U_i [P, in/groups·kh·kw] holds the unfolded input (one row per output
 * position) and G_i [P, out/groups] the loss gradient at the output (position-major, "dyT"), so
 * ∇W_g ℓ_i = G_iᵀ U_i. With one group the whole batch is one gemm: U is [batch·P, patch].
 */
export class Conv2dLayer implements Layer {
  readonly params: Parameter[];
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly outWidth: number;
  normMethod: NormMethod = "auto";
  readonly geometry: ConvGeometry;
  private readonly positions: number;
  private readonly groupPatch: number;
  private readonly groupOut: number;
  private readonly wViews: Float32Array[];
  private readonly gViews: Float32Array[];
  private dy: Float32Array = new Float32Array(0);
  private explicitReady = false;
  private readonly cols = new Scratch();
  private readonly dcols = new Scratch();
  private readonly out = new Scratch();
  private readonly yt = new Scratch();
  private readonly dyt = new Scratch();
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
      groups: o.groups,
    };
    const { outH, outW } = convOutput(this.geometry);
    this.positions = outH * outW;
    this.outWidth = o.outChannels * this.positions;
    this.groupPatch = (o.inChannels / o.groups) * o.kernel[0] * o.kernel[1];
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

  private get inWidth(): number {
    return this.geometry.channels * this.geometry.height * this.geometry.width;
  }

  /** U of example n, group g: [P, in/groups·kh·kw]. */
  private colsOf(cols: Float32Array, n: number, g: number): Float32Array {
    const size = this.positions * this.groupPatch;
    const at = (n * this.o.groups + g) * size;
    return cols.subarray(at, at + size);
  }

  /** Position-major output gradient of example n, group g: [P, out/groups]. */
  private dytOf(dyt: Float32Array, n: number, g: number): Float32Array {
    const size = this.positions * this.groupOut;
    const at = (n * this.o.groups + g) * size;
    return dyt.subarray(at, at + size);
  }

  /** Channel-major output (NCHW) of example n, group g: [out/groups, P]. */
  private outOf(y: Float32Array, n: number, g: number): Float32Array {
    const at = (n * this.o.outChannels + g * this.groupOut) * this.positions;
    return y.subarray(at, at + this.groupOut * this.positions);
  }

  forward(x: Float32Array, rows: number): Float32Array {
    const P = this.positions;
    const cols = this.cols.view(rows * this.o.groups * P * this.groupPatch);
    this.k.im2col(x, rows, this.geometry, cols);
    const y = this.out.view(rows * this.outWidth);
    if (this.o.groups === 1) {
      // [rows·P, out] = U Wᵀ in one gemm, then to channel-major per example.
      const C = this.o.outChannels;
      const yt = this.yt.view(rows * P * C);
      this.k.gemm(false, true, rows * P, C, this.groupPatch, cols, this.weight.data, yt, 0);
      if (this.bias) this.k.addRowVector(yt, rows * P, C, this.bias.data);
      this.k.transposeBlocks(yt, rows, P, C, y);
      return y;
    }
    for (let n = 0; n < rows; n++)
      for (let g = 0; g < this.o.groups; g++)
        this.k.gemm(
          false,
          true,
          this.groupOut,
          P,
          this.groupPatch,
          this.wViews[g],
          this.colsOf(cols, n, g),
          this.outOf(y, n, g),
          0,
        );
    if (this.bias) addChannelBias(y, rows, this.o.outChannels, P, this.bias.data);
    return y;
  }

  backward(dy: Float32Array, rows: number, needInputGrad: boolean): Float32Array | null {
    this.dy = dy;
    this.explicitReady = false;
    const P = this.positions;
    const dyt = this.dyt.view(rows * this.outWidth);
    // [out, P] per example -> [groups][P][out/groups] per example.
    if (this.o.groups === 1) this.k.transposeBlocks(dy, rows, this.groupOut, P, dyt);
    else
      for (let n = 0; n < rows; n++)
        for (let g = 0; g < this.o.groups; g++)
          this.k.transposeBlocks(this.outOf(dy, n, g), 1, this.groupOut, P, this.dytOf(dyt, n, g));
    if (!needInputGrad) return null;
    const dcols = this.dcols.view(rows * this.o.groups * P * this.groupPatch);
    if (this.o.groups === 1)
      this.k.gemm(false, false, rows * P, this.groupPatch, this.groupOut, dyt, this.weight.data, dcols, 0);
    else
      for (let n = 0; n < rows; n++)
        for (let g = 0; g < this.o.groups; g++)
          this.k.gemm(
            false,
            false,
            P,
            this.groupPatch,
            this.groupOut,
            this.dytOf(dyt, n, g),
            this.wViews[g],
            this.colsOf(dcols, n, g),
            0,
          );
    const dx = this.dx.view(rows * this.inWidth);
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
    const cols = this.cols.view(rows * this.o.groups * this.positions * this.groupPatch);
    const dyt = this.dyt.view(rows * this.outWidth);
    const grads = ghost ? null : this.perExample.view(rows * this.weight.data.length);
    for (let n = 0; n < rows; n++) {
      let s = 0;
      for (let g = 0; g < this.o.groups; g++) {
        const u = this.colsOf(cols, n, g);
        const d = this.dytOf(dyt, n, g);
        s += grads ? this.explicitSqNorm(u, d, grads, n, g) : this.ghostSqNorm(u, d);
      }
      out[n] += s + this.biasSqNorm(n);
    }
    this.explicitReady = !ghost;
  }

  private ghostSqNorm(u: Float32Array, d: Float32Array): number {
    const P = this.positions;
    const gram = this.gram.view(2 * P * P);
    const a = gram.subarray(0, P * P);
    const b = gram.subarray(P * P);
    this.k.gemm(false, true, P, P, this.groupPatch, u, u, a, 0);
    this.k.gemm(false, true, P, P, this.groupOut, d, d, b, 0);
    let s = 0;
    for (let j = 0; j < P * P; j++) s += a[j] * b[j];
    return s;
  }

  /** Writes ∇W_g ℓ_n into `all` (kept for writeGrads) and returns its squared norm. */
  private explicitSqNorm(u: Float32Array, d: Float32Array, all: Float32Array, n: number, g: number): number {
    const per = this.groupOut * this.groupPatch;
    const at = n * this.weight.data.length + g * per;
    const grad = all.subarray(at, at + per);
    this.k.gemm(true, false, this.groupOut, this.groupPatch, this.positions, d, u, grad, 0);
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
    let dyt = this.dyt.view(rows * this.outWidth);
    if (w) {
      const scaled = this.scaled.view(rows * this.outWidth);
      this.k.scaleRows(dyt, rows, this.outWidth, w, scaled);
      dyt = scaled;
    }
    const cols = this.cols.view(rows * this.o.groups * this.positions * this.groupPatch);
    const P = this.positions;
    if (this.o.groups === 1) {
      this.k.gemm(true, false, this.groupOut, this.groupPatch, rows * P, dyt, cols, this.weight.grad, 0);
      return;
    }
    for (let g = 0; g < this.o.groups; g++)
      for (let n = 0; n < rows; n++)
        this.k.gemm(
          true,
          false,
          this.groupOut,
          this.groupPatch,
          P,
          this.dytOf(dyt, n, g),
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

function addChannelBias(y: Float32Array, rows: number, channels: number, P: number, b: Float32Array): void {
  for (let n = 0, at = 0; n < rows; n++)
    for (let c = 0; c < channels; c++) {
      const v = b[c];
      for (let end = at + P; at < end; at++) y[at] += v;
    }
}
