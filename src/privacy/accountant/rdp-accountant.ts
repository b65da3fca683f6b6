/**
 * RDP accountant with Opacus's semantics (RDPAccountant): per-order RDP summed over the history
 * in history order, then converted once. `epsilonAfter` is O(orders): the per-step RDP vector of
 * each (σ, q) is cached, and so is the sum over all but the last history segment.
 */
import {
  appendMerged,
  normaliseHistory,
  validateDelta,
  validateSegment,
  validateStep,
  type Accountant,
  type AccountantSegment,
} from "./accountant.js";
import { DEFAULT_RDP_ORDERS, rdpToEpsilon, rdpVectorOfOneStep, type PrivacySpent } from "./rdp-analysis.js";

const CACHE_LIMIT = 256;

/**
 * Epsilon is never negative: the conversion's formula goes below 0 for a tiny spend at a large
 * delta (ε = -3.2 at δ = 0.99), which is (0, δ)-DP, not a credit. rdpToEpsilon keeps Opacus's value.
 */
function nonNegative(spent: PrivacySpent): PrivacySpent {
  return spent.epsilon < 0 ? { epsilon: 0, order: spent.order } : spent;
}
const stepRdpCache = new Map<string, Float64Array>();

/** Per-step RDP over the default orders for (σ, q); cached because it is the expensive part. */
export function cachedStepRdp(noiseMultiplier: number, sampleRate: number): Float64Array {
  const key = `${noiseMultiplier}|${sampleRate}`;
  let v = stepRdpCache.get(key);
  if (!v) {
    v = rdpVectorOfOneStep(sampleRate, noiseMultiplier, DEFAULT_RDP_ORDERS);
    if (stepRdpCache.size >= CACHE_LIMIT) stepRdpCache.delete(stepRdpCache.keys().next().value as string);
    stepRdpCache.set(key, v);
  }
  return v;
}

/** Total RDP of a history, summed like Opacus: ((0 + v1·T1) + v2·T2) + … */
export function historyRdp(history: readonly AccountantSegment[]): Float64Array {
  const total = new Float64Array(DEFAULT_RDP_ORDERS.length);
  for (const seg of history) addScaled(total, cachedStepRdp(seg.noiseMultiplier, seg.sampleRate), seg.steps);
  return total;
}

function addScaled(total: Float64Array, perStep: Float64Array, steps: number): void {
  for (let k = 0; k < total.length; k++) total[k] += perStep[k] * steps;
}

export class RdpAccountant implements Accountant {
  readonly mechanism = "rdp" as const;
  private readonly segments: AccountantSegment[] = [];
  /** RDP of every segment but the last (the last one still grows as steps merge into it). */
  private prefix = new Float64Array(DEFAULT_RDP_ORDERS.length);

  /** An accountant that resumes from a stored history (validated; consecutive equal (σ, q) merged). */
  static fromHistory(history: readonly AccountantSegment[]): RdpAccountant {
    const acc = new RdpAccountant();
    for (const seg of normaliseHistory(history)) acc.push(seg.noiseMultiplier, seg.sampleRate, seg.steps);
    return acc;
  }

  get history(): readonly AccountantSegment[] {
    return this.segments.slice();
  }

  step(noiseMultiplier: number, sampleRate: number, count = 1): void {
    validateStep(noiseMultiplier, sampleRate, count);
    this.push(noiseMultiplier, sampleRate, count);
  }

  getEpsilon(delta: number): number {
    return this.getPrivacySpent(delta).epsilon;
  }

  /** Epsilon and the optimal order α*; an empty history gives (0, 0) as in Opacus. */
  getPrivacySpent(delta: number): PrivacySpent {
    validateDelta(delta);
    if (this.segments.length === 0) return { epsilon: 0, order: 0 };
    return nonNegative(rdpToEpsilon(this.totalWith(null), delta));
  }

  epsilonAfter(next: AccountantSegment, delta: number): number {
    return this.privacySpentAfter(next, delta).epsilon;
  }

  /** What `step(next…)` followed by `getPrivacySpent(delta)` would return, without stepping. */
  privacySpentAfter(next: AccountantSegment, delta: number): PrivacySpent {
    validateSegment(next, "next");
    validateDelta(delta);
    if (next.steps === 0) return this.getPrivacySpent(delta);
    return nonNegative(rdpToEpsilon(this.totalWith(next), delta));
  }

  private push(noiseMultiplier: number, sampleRate: number, steps: number): void {
    const before = this.segments.length;
    appendMerged(this.segments, noiseMultiplier, sampleRate, steps);
    if (this.segments.length > before && before > 0) {
      // The previous last segment is now final: fold it into the prefix, in history order.
      const prev = this.segments[before - 1];
      addScaled(this.prefix, cachedStepRdp(prev.noiseMultiplier, prev.sampleRate), prev.steps);
    }
  }

  /** Total RDP of the history, optionally with `next` appended (merged into the last segment if equal). */
  private totalWith(next: AccountantSegment | null): Float64Array {
    const total = Float64Array.from(this.prefix);
    const last = this.segments[this.segments.length - 1];
    if (!last) {
      if (next) addScaled(total, cachedStepRdp(next.noiseMultiplier, next.sampleRate), next.steps);
      return total;
    }
    const merges =
      next !== null && next.noiseMultiplier === last.noiseMultiplier && next.sampleRate === last.sampleRate;
    addScaled(
      total,
      cachedStepRdp(last.noiseMultiplier, last.sampleRate),
      merges ? last.steps + next.steps : last.steps,
    );
    if (next && !merges) addScaled(total, cachedStepRdp(next.noiseMultiplier, next.sampleRate), next.steps);
    return total;
  }
}
