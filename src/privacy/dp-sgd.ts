import type { Network } from "../model/network.js";
import type { RandomSource } from "../random.js";
import { gaussianNoiseWords, type Kernels } from "../tensor/kernels.js";

/** Opacus adds this to the norm before dividing, so a zero gradient never divides by zero. */
export const CLIP_EPSILON = 1e-6;

export interface DpSgdSettings {
  maxGradNorm: number;
  noiseMultiplier: number;
  /** int(N · q): the clipped, noised sum is divided by this, never by the realised batch size. */
  expectedBatchSize: number;
}

/**
 * Flat clipping factors: c_i = min(1, C / (‖∇ℓ_i‖ + 1e-6)).
 */
export function clipFactors(norms: Float64Array, rows: number, maxGradNorm: number, out: Float32Array): void {
  for (let i = 0; i < rows; i++) out[i] = Math.min(1, maxGradNorm / (norms[i] + CLIP_EPSILON));
}

/**
 * One DP-SGD gradient: per-example gradients of the batch, flat-clipped to C and summed,
 * plus N(0, (σC)²) per coordinate from `noise`, divided by the expected batch size.
 * Leaves the result in every parameter's `grad`. An empty batch yields pure noise.
 */
export class DpSgdGradient {
  private factors = new Float32Array(0);
  private words = new Uint32Array(0);

  constructor(
    private readonly net: Network,
    private readonly k: Kernels,
    private readonly noise: RandomSource,
  ) {}

  /** scale · Σ_i clip(∇ℓ_i) into the grads (no noise); returns the per-example losses and norms. */
  clippedSum(
    x: Float32Array,
    labels: Int32Array,
    rows: number,
    maxGradNorm: number,
    scale = 1,
  ): { losses: Float64Array; norms: Float64Array } | null {
    if (rows === 0) {
      this.net.zeroGrads();
      return null;
    }
    const logits = this.net.forward(x, rows, true);
    const { losses, dLogits } = this.net.lossAndGrad(logits, labels, rows);
    this.net.backward(dLogits, rows);
    const norms = this.net.perExampleGradNorms(rows);
    if (this.factors.length < rows) this.factors = new Float32Array(rows);
    const c = this.factors.subarray(0, rows);
    clipFactors(norms, rows, maxGradNorm, c);
    if (scale !== 1) for (let i = 0; i < rows; i++) c[i] *= scale;
    this.net.writeGrads(rows, c);
    return { losses, norms };
  }

  compute(x: Float32Array, labels: Int32Array, rows: number, s: DpSgdSettings): { lossSum: number } {
    // (Σ c_i g_i + N(0, (σC)²)) / B  ==  Σ (c_i/B) g_i + N(0, (σC/B)²): one pass, no rescaling sweep.
    const scale = 1 / s.expectedBatchSize;
    const res = this.clippedSum(x, labels, rows, s.maxGradNorm, scale);
    const std = s.noiseMultiplier * s.maxGradNorm * scale;
    // One CSPRNG call per step for every parameter's words: per-call overhead dominated small models.
    let total = 0;
    for (const p of this.net.params) total += gaussianNoiseWords(p.grad.length);
    if (this.words.length < total) this.words = new Uint32Array(total);
    this.noise.fillUint32(this.words.subarray(0, total));
    let off = 0;
    for (const p of this.net.params) {
      const n = gaussianNoiseWords(p.grad.length);
      this.k.addGaussianNoise(p.grad, std, this.words.subarray(off, off + n));
      off += n;
    }
    let lossSum = 0;
    if (res) for (let i = 0; i < rows; i++) lossSum += res.losses[i];
    return { lossSum };
  }
}

/** The non-private gradient through the same engine: the batch mean of per-example gradients. */
export function meanGradient(
  net: Network,
  x: Float32Array,
  labels: Int32Array,
  rows: number,
): { lossSum: number } {
  if (rows === 0) {
    net.zeroGrads();
    return { lossSum: 0 };
  }
  const logits = net.forward(x, rows, true);
  const { losses, dLogits } = net.lossAndGrad(logits, labels, rows);
  net.backward(dLogits, rows);
  net.writeGrads(rows, new Float32Array(rows).fill(1 / rows));
  let lossSum = 0;
  for (let i = 0; i < rows; i++) lossSum += losses[i];
  return { lossSum };
}
