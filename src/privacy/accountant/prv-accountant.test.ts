import { describe, expect, it } from "vitest";
import { ValidationError } from "../../errors.js";
import type { AccountantSegment } from "./accountant.js";
import { erfc } from "./numeric/special.js";
import { PrvAccountant, prvEpsilonBounds } from "./prv-accountant.js";
import { SubsampledGaussianPrv, TruncatedPrv } from "./prv/subsampled-gaussian-prv.js";
import { RdpAccountant } from "./rdp-accountant.js";

const seg = (noiseMultiplier: number, sampleRate: number, steps: number): AccountantSegment => ({
  noiseMultiplier,
  sampleRate,
  steps,
});
const EPS_ERROR = 0.01;

/** Largest root of a decreasing function g on [lo, hi] by bisection. */
function bisect(g: (x: number) => number, lo: number, hi: number): number {
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (g(mid) > 0) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

const Phi = (x: number) => erfc(-x / Math.SQRT2) / 2;

/**
 * Exact ε of the Gaussian mechanism with μ = √T/σ (q = 1: T-fold composition is again Gaussian):
 * δ(ε) = Φ(-ε/μ + μ/2) - e^ε Φ(-ε/μ - μ/2)   (Dong, Roth, Su; Balle & Wang 2018).
 */
function exactGaussianEpsilon(mu: number, delta: number): number {
  return bisect((e) => Phi(-e / mu + mu / 2) - Math.exp(e) * Phi(-e / mu - mu / 2) - delta, 0, 200);
}

/**
 * Exact privacy profile of ONE Poisson-subsampled Gaussian step, P = (1-q)N(0,σ²) + qN(1,σ²) against
 * Q = N(0,σ²): δ(ε) = ∫ (p(x) - e^ε q(x))_+ dx, integrated numerically from the densities (composite
 * Simpson on [x*, x* + 40σ], where x* is where the likelihood ratio crosses e^ε).
 */
function exactSubsampledDelta(q: number, sigma: number, eps: number): number {
  const phi = (x: number) => Math.exp(-(x * x) / (2 * sigma * sigma)) / (sigma * Math.sqrt(2 * Math.PI));
  const xStar = sigma * sigma * Math.log((Math.exp(eps) - (1 - q)) / q) + 0.5;
  const n = 20000;
  const h = (40 * sigma) / n;
  const f = (x: number) => (1 - q) * phi(x) + q * phi(x - 1) - Math.exp(eps) * phi(x);
  let s = f(xStar) + f(xStar + n * h);
  for (let i = 1; i < n; i++) s += (i % 2 === 1 ? 4 : 2) * f(xStar + i * h);
  return (s * h) / 3;
}

describe("PRV accountant against exact privacy curves", () => {
  it("q = 1: T Gaussian steps are one Gaussian with μ = √T/σ; PRV lies in [exact, exact + 2·eps_error]", () => {
    for (const [sigma, steps, delta] of [
      [1, 10, 1e-5],
      [2, 50, 1e-6],
      [0.8, 1, 1e-5],
    ]) {
      const exact = exactGaussianEpsilon(Math.sqrt(steps) / sigma, delta);
      const acc = PrvAccountant.fromHistory([seg(sigma, 1, steps)]);
      const b = acc.getEpsilonBounds(delta);
      expect(acc.getEpsilon(delta)).toBe(b.upper);
      expect(b.upper, `σ=${sigma} T=${steps}`).toBeGreaterThanOrEqual(exact);
      expect(b.upper - exact, `σ=${sigma} T=${steps}`).toBeLessThanOrEqual(2 * EPS_ERROR + 1e-3);
      expect(b.lower).toBeLessThanOrEqual(exact);
    }
    // Anchor for the closed form itself: mpmath at 40 digits gives 17.8565868301076139 for μ = √10, δ = 1e-5.
    expect(exactGaussianEpsilon(Math.sqrt(10), 1e-5)).toBeCloseTo(17.856586830107613, 9);
  });

  it("q = 1 with different σ per segment (convolution path) is still one Gaussian with μ² = Σ T/σ²", () => {
    const b = prvEpsilonBounds([seg(1, 1, 5), seg(2, 1, 20)], 1e-5);
    const exact = exactGaussianEpsilon(Math.sqrt(5 + 20 / 4), 1e-5);
    expect(b.upper).toBeGreaterThanOrEqual(exact);
    expect(b.upper - exact).toBeLessThanOrEqual(2 * EPS_ERROR + 1e-3);
    const three = prvEpsilonBounds([seg(1, 1, 2), seg(2, 1, 12), seg(0.5, 1, 1)], 1e-5);
    const exact3 = exactGaussianEpsilon(Math.sqrt(2 + 12 / 4 + 4), 1e-5);
    expect(three.upper).toBeGreaterThanOrEqual(exact3);
    expect(three.upper - exact3).toBeLessThanOrEqual(2 * EPS_ERROR + 1e-3);
  });

  it("one subsampled step (q = 0.05, σ = 0.5, δ = 1e-6): PRV 6.67–6.69 brackets the exact 6.6800, RDP says 7.43", () => {
    const q = 0.05;
    const sigma = 0.5;
    const delta = 1e-6;
    const exact = bisect((e) => exactSubsampledDelta(q, sigma, e) - delta, 1, 12);
    expect(exact).toBeCloseTo(6.680002489765235, 6); // mpmath closed form, 40 digits
    const b = prvEpsilonBounds([seg(sigma, q, 1)], delta);
    expect(b.lower).toBeLessThanOrEqual(exact);
    expect(b.upper).toBeGreaterThanOrEqual(exact);
    expect(b.upper - exact).toBeLessThanOrEqual(2 * EPS_ERROR);
    expect(b.upper).toBeGreaterThan(6.67);
    expect(b.upper).toBeLessThan(6.695);
    const rdp = RdpAccountant.fromHistory([seg(sigma, q, 1)]).getEpsilon(delta);
    expect(rdp).toBeCloseTo(7.43, 2);
    expect(b.upper).toBeLessThan(rdp);
  });

  it("another single step (q = 0.2, σ = 1.2, δ = 1e-5) is bracketed by the exact numerical profile", () => {
    const exact = bisect((e) => exactSubsampledDelta(0.2, 1.2, e) - 1e-5, 0.01, 12);
    const b = prvEpsilonBounds([seg(1.2, 0.2, 1)], 1e-5);
    expect(b.upper).toBeGreaterThanOrEqual(exact);
    expect(b.lower).toBeLessThanOrEqual(exact);
    expect(b.upper - exact).toBeLessThanOrEqual(2 * EPS_ERROR);
  });

  it("the PRV mean used for the discretisation shift is the KL divergence KL(P || Q)", () => {
    // mpmath quad of ∫ p log(p/q) at 30 digits: 0.0153607525013912166 (q = 0.01, σ = 0.3). Opacus's
    // quad-based mean is 0.0153816 here, which moves its ε at T = 100 by ~0.002.
    const mean = new TruncatedPrv(new SubsampledGaussianPrv(0.01, 0.3), -51.65, 51.65).mean();
    expect(Math.abs(mean - 0.015360752501391217) / 0.01536).toBeLessThan(1e-12);
  });

  it("is tighter than RDP on subsampled compositions", () => {
    for (const [sigma, q, steps, delta] of [
      [1, 0.01, 100, 1e-6],
      [2, 0.1, 10, 1e-6],
      [0.8, 0.02, 300, 1e-5],
    ]) {
      const prv = prvEpsilonBounds([seg(sigma, q, steps)], delta).upper;
      const rdp = RdpAccountant.fromHistory([seg(sigma, q, steps)]).getEpsilon(delta);
      expect(prv, `σ=${sigma} q=${q} T=${steps}`).toBeLessThan(rdp);
      expect(prv).toBeGreaterThan(0);
    }
  });

  it("agrees with a Python transcription of Opacus's PRV code (NumPy/SciPy) to numerical precision", () => {
    // [lower, estimate, upper] from the transcription run on the same histories.
    const cases: [AccountantSegment[], number, [number, number, number]][] = [
      [[seg(1.0, 0.01, 100)], 1e-6, [0.9441088937688047, 0.9542204991692618, 0.9643320921153437]],
      [
        [seg(1.0, 0.01, 50), seg(2.0, 0.02, 30), seg(0.8, 0.005, 200)],
        1e-5,
        [1.039356890141654, 1.049513084405328, 1.0596694440347412],
      ],
    ];
    for (const [history, delta, [lower, estimate, upper]] of cases) {
      const b = prvEpsilonBounds(history, delta);
      expect(b.lower).toBeCloseTo(lower, 6);
      expect(b.estimate).toBeCloseTo(estimate, 6);
      expect(b.upper).toBeCloseTo(upper, 6);
    }
  });
});

describe("PrvAccountant behaviour", () => {
  it("spends nothing for an empty history or q = 0, and everything for σ = 0", () => {
    expect(new PrvAccountant().getEpsilon(1e-5)).toBe(0);
    expect(PrvAccountant.fromHistory([seg(1, 0, 1000)]).getEpsilon(1e-5)).toBe(0);
    expect(PrvAccountant.fromHistory([seg(0, 0.01, 1)]).getEpsilon(1e-5)).toBe(Infinity);
  });

  it("merges history like the RDP accountant and epsilonAfter equals stepping then getEpsilon", () => {
    const acc = new PrvAccountant();
    acc.step(1, 0.02, 20);
    acc.step(1, 0.02, 5);
    acc.step(1.5, 0.02, 3);
    expect(acc.history).toEqual([seg(1, 0.02, 25), seg(1.5, 0.02, 3)]);
    for (const next of [seg(1.5, 0.02, 2), seg(1, 0.02, 4)]) {
      const fork = PrvAccountant.fromHistory(acc.history);
      const predicted = fork.epsilonAfter(next, 1e-5);
      expect(fork.history).toEqual(acc.history);
      fork.step(next.noiseMultiplier, next.sampleRate, next.steps);
      expect(fork.getEpsilon(1e-5)).toBe(predicted);
    }
  });

  it("fails closed with typed errors when the numerics cannot be trusted", () => {
    // Opacus's guard: long-double epsilon times the grid size must stay below δ - δ_err.
    expect(() => PrvAccountant.fromHistory([seg(1, 0.01, 100)]).getEpsilon(1e-15)).toThrow(
      expect.objectContaining({ code: "PRV_DELTA_TOO_SMALL" }),
    );
    // A grid of more than 2^23 points is refused rather than allocated.
    expect(() => PrvAccountant.fromHistory([seg(1, 0.001, 2e8)]).getEpsilon(1e-5)).toThrow(
      expect.objectContaining({ code: "PRV_DOMAIN_TOO_LARGE" }),
    );
    expect(() => new PrvAccountant({ epsError: 0 })).toThrow(ValidationError);
    expect(() => new PrvAccountant({ deltaError: 2 })).toThrow(/deltaError/);
  });
});
