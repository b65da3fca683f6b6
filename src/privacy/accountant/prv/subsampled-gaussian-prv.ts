/**
 * The privacy loss random variable (PRV) of the Poisson-subsampled Gaussian mechanism, as Opacus
 * defines it (Gopi et al. 2021, Props. B1/B4): Y = log(P(X)/Q(X)) with X ~ P, where
 * P = (1-q)·N(0, σ²) + q·N(1, σ²) and Q = N(0, σ²). With z(t) = log((e^t - (1-q))/q),
 *   F(t) = q·Φ(σz - 1/(2σ)) + (1-q)·Φ(σz + 1/(2σ))  for t > log(1-q), else 0.
 * Both F and the survival function S = 1 - F are evaluated directly, each where it is small, so
 * probabilities of far-tail bins keep their relative accuracy.
 */
import { erfc } from "../numeric/special.js";
import { integrate } from "../numeric/quadrature.js";

export class SubsampledGaussianPrv {
  /** The smallest privacy loss, log(1 - q) (-inf for q = 1). */
  readonly supportStart: number;

  constructor(
    readonly sampleRate: number,
    readonly noiseMultiplier: number,
  ) {
    this.supportStart = Math.log1p(-sampleRate);
  }

  /** z(t), computed in the form that avoids cancellation for each range of t. */
  private z(t: number): number {
    const q = this.sampleRate;
    if (q === 1) return t;
    if (t < -0.5) return Math.log(Math.exp(t) - (1 - q)) - Math.log(q);
    return Math.log1p(Math.expm1(t) / q);
  }

  /** [F(t), S(t)] into out. */
  evaluate(t: number, out: Float64Array): void {
    if (!(t > this.supportStart)) {
      out[0] = 0;
      out[1] = 1;
      return;
    }
    if (t === Infinity) {
      out[0] = 1;
      out[1] = 0;
      return;
    }
    const q = this.sampleRate;
    const s = this.noiseMultiplier;
    const z = this.z(t);
    const den = 2 * Math.SQRT2 * s;
    const a = (2 * z * s ** 2 - 1) / den;
    const b = (2 * z * s ** 2 + 1) / den;
    out[0] = (q * erfc(-a)) / 2 + ((1 - q) * erfc(-b)) / 2;
    out[1] = (q * erfc(a)) / 2 + ((1 - q) * erfc(b)) / 2;
  }
}

/** The PRV truncated to [tMin, tMax] and renormalised (Opacus `TruncatedPrivacyRandomVariable`). */
export class TruncatedPrv {
  readonly fMin: number;
  readonly sMax: number;
  readonly mass: number;
  private readonly buf = new Float64Array(2);

  constructor(
    readonly prv: SubsampledGaussianPrv,
    readonly tMin: number,
    readonly tMax: number,
  ) {
    prv.evaluate(tMin, this.buf);
    this.fMin = this.buf[0];
    prv.evaluate(tMax, this.buf);
    this.sMax = this.buf[1];
    this.mass = 1 - this.fMin - this.sMax;
  }

  /**
   * Mean of the truncated PRV: -∫_{tMin}^0 F_T + ∫_0^{tMax} (1 - F_T), the integration-by-parts form
   * Opacus uses, split at its breakpoints (±1e-5 … ±0.1) and at the support start.
   */
  mean(): number {
    const buf = new Float64Array(2);
    const cdfT = (t: number) => {
      this.prv.evaluate(t, buf);
      return (buf[0] - this.fMin) / this.mass;
    };
    const sfT = (t: number) => {
      this.prv.evaluate(t, buf);
      return (buf[1] - this.sMax) / this.mass;
    };
    const steps = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1];
    const left = [this.tMin, ...steps.map((x) => -x).reverse(), 0];
    const start = this.prv.supportStart;
    if (start > this.tMin && start < 0) left.push(start);
    left.sort((x, y) => x - y);
    const right = [0, ...steps, this.tMax];
    let negative = 0;
    for (let i = 0; i + 1 < left.length; i++) {
      const lo = Math.max(left[i], this.tMin);
      const hi = left[i + 1];
      // Below the support F = 0, so F_T is the constant -fMin/mass there.
      if (hi <= start) negative += (-this.fMin / this.mass) * (hi - lo);
      else negative += integrate(cdfT, lo, hi);
    }
    let positive = 0;
    for (let i = 0; i + 1 < right.length; i++) positive += integrate(sfT, right[i], right[i + 1]);
    return positive - negative;
  }
}
