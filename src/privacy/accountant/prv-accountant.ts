/**
 * PRV accountant (Gopi, Lee, Wutschitz 2021) as Opacus's PRVAccountant computes it: a domain sized
 * from RDP bounds, a mesh from eps_error and delta_error, discretised PRVs composed by FFT, and
 * eps_upper = ε(δ - δ_err) + ε_err as the reported epsilon (an upper bound up to numerical error).
 */
import { ValidationError, type FieldIssue } from "../../errors.js";
import {
  AccountantError,
  appendMerged,
  normaliseHistory,
  validateDelta,
  validateSegment,
  validateStep,
  type Accountant,
  type AccountantSegment,
} from "./accountant.js";
import { createAlignedDomain, type Domain } from "./prv/domain.js";
import { composeHeterogeneous, discretise, epsilonBounds, type EpsilonBounds } from "./prv/discrete-prv.js";
import { SubsampledGaussianPrv } from "./prv/subsampled-gaussian-prv.js";
import { rdpToEpsilon } from "./rdp-analysis.js";
import { cachedStepRdp, historyRdp } from "./rdp-accountant.js";

export interface PrvOptions {
  /** Allowed error in epsilon (Opacus default 0.01). */
  epsError?: number;
  /** Allowed error in delta; defaults to delta / 1000 at each query (Opacus default). */
  deltaError?: number;
}

/** Largest grid the accountant will allocate (each point costs ~100 bytes across the FFTs). */
export const PRV_MAX_DOMAIN_SIZE = 2 ** 23;
/** exp(±t) must stay finite on the grid. */
const PRV_MAX_DOMAIN_HALF_WIDTH = 700;
const MEMO_LIMIT = 64;

/** Opacus `compute_safe_domain_size` (Gopi et al., Remark 5.6). */
function safeDomainHalfWidth(
  history: readonly AccountantSegment[],
  epsError: number,
  deltaError: number,
): number {
  const total = history.reduce((s, h) => s + h.steps, 0);
  let lMax = rdpToEpsilon(historyRdp(history), deltaError / 4).epsilon;
  for (const seg of history) {
    const one = rdpToEpsilon(
      cachedStepRdp(seg.noiseMultiplier, seg.sampleRate),
      deltaError / (8 * total),
    ).epsilon;
    lMax = Math.max(lMax, one);
  }
  return Math.max(lMax, epsError) + 3;
}

function prvDomain(history: readonly AccountantSegment[], epsError: number, deltaError: number): Domain {
  const total = history.reduce((s, h) => s + h.steps, 0);
  const half = safeDomainHalfWidth(history, epsError, deltaError);
  if (!(half <= PRV_MAX_DOMAIN_HALF_WIDTH)) {
    throw new AccountantError(
      "PRV_DOMAIN_TOO_LARGE",
      "epsilon is beyond the range the PRV accountant can represent",
    );
  }
  const mesh = epsError / Math.sqrt((total * Math.log(12 / deltaError)) / 2);
  const size = 2 * Math.ceil(half / mesh) + 2;
  if (!(size <= PRV_MAX_DOMAIN_SIZE)) {
    throw new AccountantError(
      "PRV_DOMAIN_TOO_LARGE",
      "the PRV grid for this many steps would be too large; use the rdp accountant",
    );
  }
  return createAlignedDomain(-half, half, mesh);
}

/** ε bounds of a history at delta (an empty or q = 0 history spends nothing; σ = 0 with q > 0 is unbounded). */
export function prvEpsilonBounds(
  history: readonly AccountantSegment[],
  delta: number,
  options: PrvOptions = {},
): EpsilonBounds {
  const epsError = options.epsError ?? 0.01;
  const deltaError = options.deltaError ?? delta / 1000;
  const active = history.filter((h) => h.sampleRate > 0 && h.steps > 0);
  if (active.length === 0) return { lower: 0, estimate: 0, upper: 0 };
  if (active.some((h) => h.noiseMultiplier === 0))
    return { lower: Infinity, estimate: Infinity, upper: Infinity };
  const domain = prvDomain(active, epsError, deltaError);
  const dprvs = active.map((h) => {
    try {
      return discretise(new SubsampledGaussianPrv(h.sampleRate, h.noiseMultiplier), domain);
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      throw new AccountantError("PRV_NUMERIC_FAILURE", "the PRV of this step could not be computed");
    }
  });
  const composed = composeHeterogeneous(
    dprvs,
    active.map((h) => h.steps),
  );
  const b = epsilonBounds(composed, delta, deltaError, epsError);
  // Epsilon is never negative: a bound below 0 (a tiny spend at a large delta) means 0.
  return { lower: Math.max(0, b.lower), estimate: Math.max(0, b.estimate), upper: Math.max(0, b.upper) };
}

export class PrvAccountant implements Accountant {
  readonly mechanism = "prv" as const;
  private readonly segments: AccountantSegment[] = [];
  private readonly memo = new Map<string, number>();
  private readonly options: PrvOptions;

  constructor(options: PrvOptions = {}) {
    const epsError = options.epsError ?? 0.01;
    const issues: FieldIssue[] = [];
    if (!(epsError > 0 && epsError < 1))
      issues.push({ path: "epsError", rule: "must be a number in (0, 1)" });
    if (options.deltaError !== undefined && !(options.deltaError > 0 && options.deltaError < 1)) {
      issues.push({ path: "deltaError", rule: "must be a number in (0, 1)" });
    }
    if (issues.length > 0) throw new ValidationError("PRV accountant options", issues);
    this.options = { ...options, epsError };
  }

  static fromHistory(history: readonly AccountantSegment[], options: PrvOptions = {}): PrvAccountant {
    const acc = new PrvAccountant(options);
    for (const seg of normaliseHistory(history))
      appendMerged(acc.segments, seg.noiseMultiplier, seg.sampleRate, seg.steps);
    return acc;
  }

  get history(): readonly AccountantSegment[] {
    return this.segments.slice();
  }

  step(noiseMultiplier: number, sampleRate: number, count = 1): void {
    validateStep(noiseMultiplier, sampleRate, count);
    appendMerged(this.segments, noiseMultiplier, sampleRate, count);
  }

  getEpsilon(delta: number): number {
    validateDelta(delta);
    return this.epsilonOf(this.segments, delta);
  }

  /** Lower bound, estimate and upper bound (the reported epsilon) at delta. */
  getEpsilonBounds(delta: number): EpsilonBounds {
    validateDelta(delta);
    return prvEpsilonBounds(this.segments, delta, this.options);
  }

  epsilonAfter(next: AccountantSegment, delta: number): number {
    validateSegment(next, "next");
    validateDelta(delta);
    const merged = this.segments.slice();
    appendMerged(merged, next.noiseMultiplier, next.sampleRate, next.steps);
    return this.epsilonOf(merged, delta);
  }

  /** Each query costs a full discretisation and FFT, so identical queries are answered from a memo. */
  private epsilonOf(history: readonly AccountantSegment[], delta: number): number {
    const key = `${delta}|` + history.map((h) => `${h.noiseMultiplier},${h.sampleRate},${h.steps}`).join(";");
    const hit = this.memo.get(key);
    if (hit !== undefined) return hit;
    const eps = prvEpsilonBounds(history, delta, this.options).upper;
    if (this.memo.size >= MEMO_LIMIT) this.memo.delete(this.memo.keys().next().value as string);
    this.memo.set(key, eps);
    return eps;
  }
}
