/**
 * RDP of the Poisson-subsampled Gaussian mechanism and its conversion to (ε, δ), reproducing
 * Opacus 1.4/1.5 (`opacus/accountants/analysis/rdp.py`) operation for operation, so epsilons agree
 * with it to ~1e-12 relative. Math: Mironov, Talwar, Zhang, arXiv:1908.10530 §3.3; conversion:
 * Balle et al. 2020, Theorem 21. See docs/privacy.md ("Accountants").
 */
import { binom, logErfc } from "./numeric/special.js";
import { logAdd, logSub } from "./numeric/log-space.js";
import { crLog } from "./numeric/correctly-rounded.js";
import { AccountantError } from "./accountant.js";

/** Far beyond any convergent case (the slowest default-order series takes ~1e4 terms). */
const MAX_SERIES_TERMS = 10_000_000;

/**
 * Opacus's default orders: 1 + x/10 for x = 1..99 (1.1 … 10.9, computed exactly like Python's
 * `1 + x / 10.0`), then the integers 12..63. 151 orders; 11 is not among them.
 */
export const DEFAULT_RDP_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10.0),
  ...Array.from({ length: 52 }, (_, i) => 12 + i),
]);

function logAForIntegerOrder(q: number, sigma: number, alpha: number): number {
  let logA = -Infinity;
  const twoSigmaSq = 2 * sigma ** 2;
  const logQ = crLog(q);
  const log1mQ = crLog(1 - q);
  for (let i = 0; i <= alpha; i++) {
    const logCoef = crLog(binom(alpha, i)) + i * logQ + (alpha - i) * log1mQ;
    const s = logCoef + (i * i - i) / twoSigmaSq;
    logA = logAdd(logA, s);
  }
  return logA;
}

/**
 * Two-sided series for a fractional order, with Opacus's stopping rule (checked after the update).
 * The generalised binomial C(α, i) is taken from `binom` for i < 20 (SciPy's own product) and by
 * the recurrence C(α, i) = C(α, i-1)·(α-i+1)/i beyond, which keeps this loop linear in its length.
 */
function logAForFractionalOrder(q: number, sigma: number, alpha: number): number {
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma ** 2 * crLog(1 / q - 1) + 0.5;
  const logQ = crLog(q);
  const log1mQ = crLog(1 - q);
  const twoSigmaSq = 2 * sigma ** 2;
  const sqrt2Sigma = Math.sqrt(2) * sigma;
  const logHalf = crLog(0.5);
  let coef = 1;
  for (let i = 0; ;) {
    coef = i < 20 ? binom(alpha, i) : (coef * (alpha - i + 1)) / i;
    const logCoef = crLog(Math.abs(coef));
    const j = alpha - i;
    const logT0 = logCoef + i * logQ + j * log1mQ;
    const logT1 = logCoef + j * logQ + i * log1mQ;
    const logE0 = logHalf + logErfc((i - z0) / sqrt2Sigma);
    const logE1 = logHalf + logErfc((z0 - j) / sqrt2Sigma);
    const logS0 = logT0 + (i * i - i) / twoSigmaSq + logE0;
    const logS1 = logT1 + (j * j - j) / twoSigmaSq + logE1;
    if (coef > 0) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    i += 1;
    if (Math.max(logS0, logS1) < -30) break;
    // Opacus would loop forever here (NaN never compares below -30); fail closed instead.
    if (Number.isNaN(logS0) || Number.isNaN(logS1) || i > MAX_SERIES_TERMS) {
      throw new AccountantError("RDP_SERIES_DIVERGED", "the fractional-order RDP series did not converge");
    }
  }
  return logAdd(logA0, logA1);
}

/** RDP at order `alpha` of ONE step of the Poisson-subsampled Gaussian (Opacus `_compute_rdp`). */
export function rdpOfOneStep(q: number, sigma: number, alpha: number): number {
  if (q === 0) return 0;
  if (sigma === 0) return Infinity;
  if (q === 1.0) return alpha / (2 * sigma ** 2);
  if (alpha === Infinity) return Infinity;
  const logA = Number.isInteger(alpha)
    ? logAForIntegerOrder(q, sigma, alpha)
    : logAForFractionalOrder(q, sigma, alpha);
  return logA / (alpha - 1);
}

/** Per-step RDP vector over `orders`. */
export function rdpVectorOfOneStep(
  q: number,
  sigma: number,
  orders: readonly number[] = DEFAULT_RDP_ORDERS,
): Float64Array {
  const out = new Float64Array(orders.length);
  for (let k = 0; k < orders.length; k++) out[k] = rdpOfOneStep(q, sigma, orders[k]);
  return out;
}

export interface PrivacySpent {
  epsilon: number;
  /** The optimal order α*; NaN when every order gave NaN. */
  order: number;
}

const conversionCache = new Map<
  string,
  { orders: readonly number[]; shift: Float64Array; gain: Float64Array }
>();

/**
 * The δ- and α-only terms of the conversion, (ln δ + ln α)/(α−1) and ln((α−1)/α), cached per
 * (δ, orders): the Privacy Guard converts before every training step, and these logs dominate.
 */
function conversionTerms(
  delta: number,
  orders: readonly number[],
): { shift: Float64Array; gain: Float64Array } {
  const key = `${delta}|${orders === DEFAULT_RDP_ORDERS ? "default" : orders.join(",")}`;
  const hit = conversionCache.get(key);
  if (hit) return hit;
  const logDelta = crLog(delta);
  const shift = new Float64Array(orders.length);
  const gain = new Float64Array(orders.length);
  for (let k = 0; k < orders.length; k++) {
    const a = orders[k];
    shift[k] = (logDelta + crLog(a)) / (a - 1);
    gain[k] = crLog((a - 1) / a);
  }
  if (conversionCache.size >= 64) conversionCache.delete(conversionCache.keys().next().value as string);
  const entry = { orders, shift, gain };
  conversionCache.set(key, entry);
  return entry;
}

/**
 * (ε, δ) from an RDP curve (Opacus `get_privacy_spent`): ε(α) = rdp(α) - (ln δ + ln α)/(α-1) +
 * ln((α-1)/α), minimised like numpy.nanargmin (NaN counts as +inf, first minimiser wins). No
 * clamp at 0, no KL shortcut, no α > 1.01 guard. All-NaN gives (inf, NaN).
 */
export function rdpToEpsilon(
  rdp: ArrayLike<number>,
  delta: number,
  orders: readonly number[] = DEFAULT_RDP_ORDERS,
): PrivacySpent {
  if (rdp.length !== orders.length) throw new RangeError("rdp and orders must have the same length");
  const { shift, gain } = conversionTerms(delta, orders);
  let best = -1;
  let bestKey = Infinity;
  let allNaN = true;
  const eps = new Float64Array(orders.length);
  for (let k = 0; k < orders.length; k++) {
    // Same operations in the same order as the formula: the cached terms change no bit.
    const e = rdp[k] - shift[k] + gain[k];
    eps[k] = e;
    if (!Number.isNaN(e)) allNaN = false;
    const key = Number.isNaN(e) ? Infinity : e;
    if (best < 0 || key < bestKey) {
      best = k;
      bestKey = key;
    }
  }
  if (orders.length === 0 || allNaN) return { epsilon: Infinity, order: NaN };
  return { epsilon: eps[best], order: orders[best] };
}
