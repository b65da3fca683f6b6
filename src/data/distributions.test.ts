import { describe, expect, it } from "vitest";
import { SeededRandom } from "../random.js";
import { sampleDirichlet, sampleGamma, sampleLogGamma, sampleStandardNormal } from "./distributions.js";

const N = 20_000;

function moments(xs: Float64Array): { mean: number; variance: number } {
  let m = 0;
  for (const x of xs) m += x;
  m /= xs.length;
  let v = 0;
  for (const x of xs) v += (x - m) * (x - m);
  return { mean: m, variance: v / (xs.length - 1) };
}

/** Kolmogorov-Smirnov statistic of the sample against a CDF. */
function ks(xs: Float64Array, cdf: (x: number) => number): number {
  const s = Float64Array.from(xs).sort();
  let d = 0;
  for (let i = 0; i < s.length; i++) {
    const f = cdf(s[i]);
    d = Math.max(d, Math.abs(f - i / s.length), Math.abs((i + 1) / s.length - f));
  }
  return d;
}

/** erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), an independent reference for the CDFs. */
function erf(x: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return x >= 0 ? y : -y;
}

// 95th-percentile-free: the 0.1% critical value of the KS statistic is 1.95 / sqrt(n).
const KS_CRITICAL = 1.95 / Math.sqrt(N);

describe("standard normal", () => {
  it("fits N(0, 1) (KS test against the erf CDF)", () => {
    const rng = new SeededRandom("normal");
    const xs = Float64Array.from({ length: N }, () => sampleStandardNormal(rng));
    expect(ks(xs, (x) => 0.5 * (1 + erf(x / Math.SQRT2)))).toBeLessThan(KS_CRITICAL);
  });
});

describe("Gamma (Marsaglia-Tsang)", () => {
  it.each([0.1, 0.5, 1, 2.5, 10, 100])("shape %f has mean and variance equal to the shape", (a) => {
    const rng = new SeededRandom(`gamma-${a}`);
    const xs = Float64Array.from({ length: N }, () => sampleGamma(a, rng));
    const { mean, variance } = moments(xs);
    expect(Math.abs(mean - a)).toBeLessThan(5 * Math.sqrt(a / N));
    // Var of the sample variance of Gamma(a): a^2 (2 + 6/a) / n.
    expect(Math.abs(variance - a)).toBeLessThan(5 * Math.sqrt((a * a * (2 + 6 / a)) / N));
    expect(xs.every((x) => x > 0)).toBe(true);
  });

  it("shape 2 follows the closed-form CDF 1 - e^-x (1 + x)", () => {
    const rng = new SeededRandom("gamma-cdf-2");
    const xs = Float64Array.from({ length: N }, () => sampleGamma(2, rng));
    expect(ks(xs, (x) => 1 - Math.exp(-x) * (1 + x))).toBeLessThan(KS_CRITICAL);
  });

  it("shape 1/2 (the boosted branch) follows chi-square(1)/2: CDF erf(sqrt(x))", () => {
    const rng = new SeededRandom("gamma-cdf-half");
    const xs = Float64Array.from({ length: N }, () => sampleGamma(0.5, rng));
    expect(ks(xs, (x) => erf(Math.sqrt(x)))).toBeLessThan(KS_CRITICAL);
  });

  it("a tiny shape (0.01) stays finite in log space with E[log X] = digamma(0.01)", () => {
    const rng = new SeededRandom("gamma-tiny");
    const logs = Float64Array.from({ length: N }, () => sampleLogGamma(0.01, rng));
    expect(logs.every(Number.isFinite)).toBe(true);
    // digamma(0.01) = -1/0.01 - EulerGamma + (pi^2/6)(0.01) + O(1e-6); Var[log X] = trigamma(0.01) ~ 10001.6.
    const digamma = -100 - 0.5772156649 + (Math.PI ** 2 / 6) * 0.01;
    expect(Math.abs(moments(logs).mean - digamma)).toBeLessThan(5 * Math.sqrt(10001.6 / N));
  });

  it("rejects a non-positive shape", () => {
    expect(() => sampleGamma(0, new SeededRandom(1))).toThrow(/> 0/);
    expect(() => sampleGamma(NaN, new SeededRandom(1))).toThrow(/> 0/);
  });
});

describe("Dirichlet", () => {
  it("draws points on the simplex with mean alpha_i / sum(alpha)", () => {
    const rng = new SeededRandom("dirichlet");
    const alphas = [0.5, 1, 2.5];
    const sums = [0, 0, 0];
    for (let i = 0; i < N; i++) {
      const p = sampleDirichlet(alphas, rng);
      expect(Math.abs(p[0] + p[1] + p[2] - 1)).toBeLessThan(1e-12);
      for (let k = 0; k < 3; k++) sums[k] += p[k];
    }
    // Var of component k is a_k (A - a_k) / (A^2 (A + 1)) with A = 4: at most 0.0469, SE < 0.0016.
    expect(sums.map((s) => s / N)).toEqual([expect.closeTo(0.125, 2), expect.closeTo(0.25, 2), expect.closeTo(0.625, 2)]);
  });

  it("stays normalised for tiny alphas (no 0/0)", () => {
    const rng = new SeededRandom("dirichlet-tiny");
    for (let i = 0; i < 100; i++) {
      const p = sampleDirichlet(new Array(20).fill(0.001), rng);
      expect(p.every(Number.isFinite)).toBe(true);
      expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    }
  });
});
