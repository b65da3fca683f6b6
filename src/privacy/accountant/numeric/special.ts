/**
 * Special functions in float64 for the privacy accountants: erfc / erfcx (W. J. Cody, "Rational
 * Chebyshev approximations for the error function", Math. Comp. 23, 1969), log_ndtr the way
 * SciPy computes it, and binomial coefficients with scipy.special.binom's semantics.
 */
import { crLog } from "./correctly-rounded.js";

// Cody's published coefficient sets (CALERF). A/B: erf on |x| <= 0.46875; C/D: erfc(x)·exp(x²) on
// (0.46875, 4]; P/Q: the asymptotic form of erfc(x)·exp(x²) for x > 4. Each literal is the shortest
// form of the double nearest Cody's 18-digit published value.
const A = [3.1611237438705655, 113.86415415105016, 377.485237685302, 3209.3775891384694, 0.18577770618460315];
const B = [23.601290952344122, 244.02463793444417, 1282.6165260773723, 2844.236833439171];
const C = [
  0.5641884969886701, 8.883149794388377, 66.11919063714163, 298.6351381974001, 881.952221241769,
  1712.0476126340707, 2051.0783778260716, 1230.3393547979972, 2.1531153547440383e-8,
];
const D = [
  15.744926110709835, 117.6939508913125, 537.1811018620099, 1621.3895745666903, 3290.7992357334597,
  4362.619090143247, 3439.3676741437216, 1230.3393548037495,
];
const P = [
  0.30532663496123236, 0.36034489994980445, 0.12578172611122926, 0.016083785148742275, 0.0006587491615298378,
  0.016315387137302097,
];
const Q = [
  2.568520192289822, 1.8729528499234604, 0.5279051029514285, 0.06051834131244132, 0.0023352049762686918,
];
const ONE_OVER_SQRT_PI = 0.5641895835477563;
const THRESHOLD = 0.46875;
const X_SMALL = 1.11e-16;

/** erf(x) for |x| <= 0.46875 (Cody's first interval). */
function erfSmall(x: number): number {
  const ysq = Math.abs(x) > X_SMALL ? x * x : 0;
  let num = A[4] * ysq;
  let den = ysq;
  for (let i = 0; i < 3; i++) {
    num = (num + A[i]) * ysq;
    den = (den + B[i]) * ysq;
  }
  return (x * (num + A[3])) / (den + B[3]);
}

/** erfc(y)·exp(y²) for y > 0.46875 (Cody's second and third intervals). */
function scaledTail(y: number): number {
  if (y <= 4) {
    let num = C[8] * y;
    let den = y;
    for (let i = 0; i < 7; i++) {
      num = (num + C[i]) * y;
      den = (den + D[i]) * y;
    }
    return (num + C[7]) / (den + D[7]);
  }
  const z = 1 / (y * y); // 0 once y*y overflows: then erfcx(y) = 1/(y√π) to double precision
  let num = P[5] * z;
  let den = z;
  for (let i = 0; i < 4; i++) {
    num = (num + P[i]) * z;
    den = (den + Q[i]) * z;
  }
  return (ONE_OVER_SQRT_PI - (z * (num + P[4])) / (den + Q[4])) / y;
}

/**
 * exp(-y²) without the rounding error of forming y² directly: y = s + r with s a multiple of 1/16,
 * so s² is exact and the small remainder carries the rest (Cody's device).
 */
function expMinusSquare(y: number): number {
  const s = Math.trunc(y * 16) / 16;
  const rem = (y - s) * (y + s);
  return Math.exp(-s * s) * Math.exp(-rem);
}

/** Complementary error function, relative accuracy ~1e-15 over the whole line. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const y = Math.abs(x);
  if (y <= THRESHOLD) return 1 - erfSmall(x);
  const tail = y === Infinity ? 0 : expMinusSquare(y) * scaledTail(y);
  return x > 0 ? tail : 2 - tail;
}

/** Scaled complementary error function erfcx(x) = exp(x²)·erfc(x); never overflows for x >= 0. */
export function erfcx(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const y = Math.abs(x);
  if (y <= THRESHOLD) return Math.exp(x * x) * (1 - erfSmall(x));
  if (x > 0) return x === Infinity ? 0 : scaledTail(y);
  // x < -0.46875: erfcx(x) = 2·exp(x²) - erfcx(|x|), which overflows for x below about -26.6.
  return 2 * Math.exp(x * x) - scaledTail(y);
}

/**
 * log of the standard normal CDF, as SciPy computes it: for a < -1 through erfcx, so the result
 * keeps full relative accuracy deep in the lower tail (log Φ(a) ≈ -a²/2 - log(-a√(2π))).
 */
export function logNdtr(a: number): number {
  if (Number.isNaN(a)) return NaN;
  const t = a * Math.SQRT1_2;
  if (a < -1) {
    if (a === -Infinity) return -Infinity;
    return crLog(erfcx(-t) / 2) - t * t;
  }
  return Math.log1p(-erfc(t) / 2);
}

/** log(erfc(x)), stable for large x; exactly Opacus's `_log_erfc` (log 2 + log_ndtr(-x·√2)). */
export function logErfc(x: number): number {
  return Math.LN2 + logNdtr(-x * Math.SQRT2);
}

/** Standard normal CDF Φ(x). */
export function normalCdf(x: number): number {
  return erfc(-x * Math.SQRT1_2) / 2;
}

/**
 * Binomial coefficient C(n, k) for real n and integer k >= 0, following scipy.special.binom:
 * the multiplication formula (with symmetry reduction for integer n), and 0 for integer
 * 0 <= n < k. For a fractional n this is the generalised binomial, whose sign alternates once
 * k > n + 1. SciPy switches to a Beta-function form for k >= 20; the same product is used here
 * instead, which agrees with it to ~1e-14 relative (k·ulp).
 */
export function binom(n: number, k: number): number {
  if (!Number.isInteger(k) || k < 0) throw new RangeError("binom: k must be a non-negative integer");
  if (Number.isNaN(n)) return NaN;
  const nIsInteger = Number.isInteger(n);
  if (n < 0 && nIsInteger) return NaN; // undefined, as in SciPy
  let kx = k;
  if (nIsInteger && kx > n / 2 && n > 0) kx = n - kx;
  if (kx < 0) return 0; // integer n >= 0 with k > n
  let num = 1;
  let den = 1;
  for (let i = 1; i <= kx; i++) {
    num *= i + n - kx;
    den *= i;
    if (Math.abs(num) > 1e50) {
      num /= den;
      den = 1;
    }
  }
  return num / den;
}
