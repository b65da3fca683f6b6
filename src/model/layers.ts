import type { RandomSource } from "../random.js";
import type { ActivationKind, Kernels } from "../tensor/kernels.js";
import { layerNormBackward, layerNormForward, layerNormPerExampleGrads } from "../tensor/layernorm.js";
import { parameter, Scratch, Scratch64, type Parameter } from "./parameter.js";

/**
 * One layer of a sequential network. Backward works on per-example loss gradients, so each
 * layer can report per-example gradient norms (for DP clipping) and then write the weighted
 * sum of per-example gradients, Σ_i w_i ∇ℓ_i, without ever materialising them when it can avoid it.
 */
export interface Layer {
  readonly params: readonly Parameter[];
  readonly outWidth: number;
  forward(x: Float32Array, rows: number, training: boolean): Float32Array;
  /** Returns dℓ_i/dx (or null when not needed) and keeps what the parameter gradients need. */
  backward(dy: Float32Array, rows: number, needInputGrad: boolean): Float32Array | null;
  /** out[i] += ‖∇_θ ℓ_i‖² over this layer's parameters. */
  addPerExampleSqNorms(rows: number, out: Float64Array): void;
  /** grad = Σ_i w_i ∇_θ ℓ_i (w = null: all ones). */
  writeGrads(rows: number, w: Float32Array | null): void;
}

/** y = x Wᵀ + b with W of shape [out, in] (PyTorch layout). */
export class LinearLayer implements Layer {
  readonly params: Parameter[];
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  private x: Float32Array = new Float32Array(0);
  private dy: Float32Array = new Float32Array(0);
  private readonly out = new Scratch();
  private readonly dx = new Scratch();
  private readonly scaled = new Scratch();
  private readonly xNorms = new Scratch64();
  private readonly gNorms = new Scratch64();

  constructor(
    private readonly k: Kernels,
    prefix: string,
    readonly inWidth: number,
    readonly outWidth: number,
    hasBias: boolean,
  ) {
    this.weight = parameter(`${prefix}.weight`, [outWidth, inWidth]);
    this.bias = hasBias ? parameter(`${prefix}.bias`, [outWidth]) : null;
    this.params = this.bias ? [this.weight, this.bias] : [this.weight];
  }

  /** PyTorch's default init: U(-1/√in, 1/√in) for weight and bias. */
  init(rng: RandomSource): void {
    const bound = 1 / Math.sqrt(this.inWidth);
    for (const p of this.params)
      for (let i = 0; i < p.data.length; i++) p.data[i] = (2 * rng.uniform() - 1) * bound;
  }

  forward(x: Float32Array, rows: number): Float32Array {
    this.x = x;
    const y = this.out.view(rows * this.outWidth);
    this.k.gemm(false, true, rows, this.outWidth, this.inWidth, x, this.weight.data, y, 0);
    if (this.bias) this.k.addRowVector(y, rows, this.outWidth, this.bias.data);
    return y;
  }

  backward(dy: Float32Array, rows: number, needInputGrad: boolean): Float32Array | null {
    this.dy = dy;
    if (!needInputGrad) return null;
    const dx = this.dx.view(rows * this.inWidth);
    this.k.gemm(false, false, rows, this.inWidth, this.outWidth, dy, this.weight.data, dx, 0);
    return dx;
  }

  /** Ghost norm: ∇_W ℓ_i = g_i x_iᵀ is rank one, so ‖∇_W ℓ_i‖² = ‖g_i‖²‖x_i‖² and ‖∇_b ℓ_i‖² = ‖g_i‖². */
  addPerExampleSqNorms(rows: number, out: Float64Array): void {
    const xs = this.xNorms.view(rows);
    const gs = this.gNorms.view(rows);
    this.k.rowSumSquares(this.x, rows, this.inWidth, xs);
    this.k.rowSumSquares(this.dy, rows, this.outWidth, gs);
    const b = this.bias ? 1 : 0;
    for (let i = 0; i < rows; i++) out[i] += gs[i] * (xs[i] + b);
  }

  writeGrads(rows: number, w: Float32Array | null): void {
    let g = this.dy;
    if (w) {
      g = this.scaled.view(rows * this.outWidth);
      this.k.scaleRows(this.dy, rows, this.outWidth, w, g);
    }
    // ∇W = Σ_i w_i g_i x_iᵀ = (diag(w) G)ᵀ X
    this.k.gemm(true, false, this.outWidth, this.inWidth, rows, g, this.x, this.weight.grad, 0);
    if (this.bias) this.k.colSum(g, rows, this.outWidth, null, this.bias.grad, 0);
  }
}

export class ActivationLayer implements Layer {
  readonly params: Parameter[] = [];
  private x: Float32Array = new Float32Array(0);
  private readonly out = new Scratch();
  private readonly dx = new Scratch();

  constructor(
    private readonly k: Kernels,
    private readonly kind: ActivationKind,
    readonly outWidth: number,
  ) {}

  forward(x: Float32Array, rows: number): Float32Array {
    this.x = x;
    const y = this.out.view(rows * this.outWidth);
    this.k.activation(this.kind, x, y);
    return y;
  }

  backward(dy: Float32Array, rows: number, needInputGrad: boolean): Float32Array | null {
    if (!needInputGrad) return null;
    const dx = this.dx.view(rows * this.outWidth);
    this.k.activationBackward(this.kind, this.x, dy, dx);
    return dx;
  }

  addPerExampleSqNorms(): void {}
  writeGrads(): void {}
}

/** y = γ ⊙ (x - μ)/√(σ² + ε) + β per row; per-example gradients of γ, β are explicit (they are small). */
export class LayerNormLayer implements Layer {
  readonly params: Parameter[];
  readonly gamma: Parameter;
  readonly beta: Parameter;
  private dy: Float32Array = new Float32Array(0);
  private readonly xhat = new Scratch();
  private readonly rstd = new Scratch();
  private readonly out = new Scratch();
  private readonly dx = new Scratch();
  private readonly perExample = new Scratch();

  constructor(
    prefix: string,
    readonly outWidth: number,
    private readonly eps: number,
  ) {
    this.gamma = parameter(`${prefix}.weight`, [outWidth]);
    this.beta = parameter(`${prefix}.bias`, [outWidth]);
    this.gamma.data.fill(1);
    this.params = [this.gamma, this.beta];
  }

  forward(x: Float32Array, rows: number): Float32Array {
    const d = this.outWidth;
    const y = this.out.view(rows * d);
    layerNormForward(
      x,
      rows,
      d,
      this.eps,
      this.gamma.data,
      this.beta.data,
      this.xhat.view(rows * d),
      this.rstd.view(rows),
      y,
    );
    return y;
  }

  backward(dy: Float32Array, rows: number, needInputGrad: boolean): Float32Array | null {
    this.dy = dy;
    if (!needInputGrad) return null;
    const d = this.outWidth;
    const dx = this.dx.view(rows * d);
    layerNormBackward(dy, rows, d, this.gamma.data, this.xhat.view(rows * d), this.rstd.view(rows), dx);
    return dx;
  }

  addPerExampleSqNorms(rows: number, out: Float64Array): void {
    const d = this.outWidth;
    const gGamma = this.perExample.view(rows * d);
    layerNormPerExampleGrads(this.dy, this.xhat.view(rows * d), rows, d, gGamma);
    for (let i = 0; i < rows; i++) {
      let s = 0;
      for (let j = i * d; j < (i + 1) * d; j++) s += gGamma[j] * gGamma[j] + this.dy[j] * this.dy[j];
      out[i] += s;
    }
  }

  writeGrads(rows: number, w: Float32Array | null): void {
    const d = this.outWidth;
    const gGamma = this.perExample.view(rows * d);
    layerNormPerExampleGrads(this.dy, this.xhat.view(rows * d), rows, d, gGamma);
    this.gamma.grad.fill(0);
    this.beta.grad.fill(0);
    for (let i = 0; i < rows; i++) {
      const wi = w ? w[i] : 1;
      for (let j = 0; j < d; j++) {
        this.gamma.grad[j] += wi * gGamma[i * d + j];
        this.beta.grad[j] += wi * this.dy[i * d + j];
      }
    }
  }
}

/** Inverted dropout; identity at evaluation. The mask is data-independent, so DP is unaffected. */
export class DropoutLayer implements Layer {
  readonly params: Parameter[] = [];
  private readonly mask = new Scratch();
  private readonly out = new Scratch();
  private readonly dx = new Scratch();
  private active = false;

  constructor(
    private readonly p: number,
    readonly outWidth: number,
    private readonly rng: RandomSource,
  ) {}

  forward(x: Float32Array, rows: number, training: boolean): Float32Array {
    this.active = training && this.p > 0;
    if (!this.active) return x;
    const n = rows * this.outWidth;
    const m = this.mask.view(n);
    const y = this.out.view(n);
    const keep = 1 / (1 - this.p);
    for (let i = 0; i < n; i++) {
      m[i] = this.rng.uniform() >= this.p ? keep : 0;
      y[i] = x[i] * m[i];
    }
    return y;
  }

  backward(dy: Float32Array, rows: number, needInputGrad: boolean): Float32Array | null {
    if (!needInputGrad) return null;
    if (!this.active) return dy;
    const n = rows * this.outWidth;
    const m = this.mask.view(n);
    const dx = this.dx.view(n);
    for (let i = 0; i < n; i++) dx[i] = dy[i] * m[i];
    return dx;
  }

  addPerExampleSqNorms(): void {}
  writeGrads(): void {}
}
