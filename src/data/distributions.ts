import type { RandomSource } from "../random.js";

/** Samplers driven by an explicit RandomSource, so a seed reproduces a partition exactly. */

function checkShape(shape: number, what: string): void {
  if (!(shape > 0) || !Number.isFinite(shape)) throw new RangeError(`${what} must be a finite number > 0`);
}

/** Standard normal by Box-Muller (one value per two uniforms; no cached state). */
export function sampleStandardNormal(rng: RandomSource): number {
  const u1 = 1 - rng.uniform(); // (0, 1]: log is finite
  const u2 = rng.uniform();
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/**
 * log of a Gamma(shape, 1) variate. Marsaglia & Tsang (2000), "A simple method for generating
 * gamma variables"; for shape < 1 their boost Gamma(a) = Gamma(a + 1) * U^(1/a). Working in logs
 * keeps tiny shapes (Dirichlet alpha 0.01) from underflowing to 0.
 */
export function sampleLogGamma(shape: number, rng: RandomSource): number {
  checkShape(shape, "gamma shape");
  if (shape < 1) {
    const u = 1 - rng.uniform();
    return sampleLogGamma(shape + 1, rng) + Math.log(u) / shape;
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = sampleStandardNormal(rng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng.uniform();
    const x2 = x * x;
    if (u < 1 - 0.0331 * x2 * x2) return Math.log(d * v);
    if (Math.log(u) < 0.5 * x2 + d * (1 - v + Math.log(v))) return Math.log(d * v);
  }
}

/** A Gamma(shape, 1) variate. */
export function sampleGamma(shape: number, rng: RandomSource): number {
  return Math.exp(sampleLogGamma(shape, rng));
}

/** A point on the simplex drawn from Dirichlet(alphas): normalised Gamma(alpha_i) variates. */
export function sampleDirichlet(alphas: ArrayLike<number>, rng: RandomSource): Float64Array {
  const k = alphas.length;
  if (k < 1) throw new RangeError("Dirichlet needs at least one concentration parameter");
  const logs = new Float64Array(k);
  let max = -Infinity;
  for (let i = 0; i < k; i++) {
    checkShape(alphas[i], "Dirichlet alpha");
    logs[i] = sampleLogGamma(alphas[i], rng);
    if (logs[i] > max) max = logs[i];
  }
  let sum = 0;
  for (let i = 0; i < k; i++) {
    logs[i] = Math.exp(logs[i] - max);
    sum += logs[i];
  }
  for (let i = 0; i < k; i++) logs[i] /= sum;
  return logs;
}
