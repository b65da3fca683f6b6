/**
 * Discretised PRVs: discretisation by CDF differences with a mean correction, composition by
 * FFT (self-composition) and linear convolution (different mechanisms), and the (ε, δ) read-out,
 * following Opacus's `analysis/prv` (Gopi, Lee, Wutschitz 2021).
 */
import { AccountantError } from "../accountant.js";
import { convolve, irfft, rfft } from "../numeric/fft.js";
import { domainDt, domainPoints, shiftRight, type Domain } from "./domain.js";
import { SubsampledGaussianPrv, TruncatedPrv } from "./subsampled-gaussian-prv.js";

export interface DiscretePrv {
  readonly pmf: Float64Array;
  readonly domain: Domain;
}

/** Machine epsilon of x87 long double, which Opacus's floating-point guard uses. */
const LONG_DOUBLE_EPS = 2 ** -63;

/**
 * Probability of each bin [t_i - dt/2, t_i + dt/2] under the PRV truncated to the domain, then the
 * grid shifted so the discrete mean equals the continuous one (Opacus `discretize`).
 */
export function discretise(prv: SubsampledGaussianPrv, domain: Domain): DiscretePrv {
  const n = domain.size;
  const dt = domainDt(domain);
  const ts = domainPoints(domain);
  const trunc = new TruncatedPrv(prv, domain.tMin, domain.tMax);
  // F and S at the n + 1 bin edges; the outer edges are clipped to the domain.
  const F = new Float64Array(n + 1);
  const S = new Float64Array(n + 1);
  const buf = new Float64Array(2);
  F[0] = trunc.fMin;
  S[0] = 1 - trunc.fMin;
  for (let i = 1; i < n; i++) {
    prv.evaluate(ts[i] - dt / 2, buf);
    F[i] = buf[0];
    S[i] = buf[1];
  }
  F[n] = 1 - trunc.sMax;
  S[n] = trunc.sMax;
  const pmf = new Float64Array(n);
  let meanD = 0;
  for (let i = 0; i < n; i++) {
    const p = F[i + 1] <= 0.5 ? F[i + 1] - F[i] : S[i] - S[i + 1];
    pmf[i] = p / trunc.mass;
    meanD += ts[i] * pmf[i];
  }
  const shift = trunc.mean() - meanD;
  if (!(Math.abs(shift) < dt / 2)) {
    throw new AccountantError(
      "PRV_DISCRETISATION_FAILED",
      "discrete PRV mean differs from the continuous mean by half a mesh step or more",
    );
  }
  return { pmf, domain: shiftRight(domain, shift) };
}

/** z^T for a complex z by binary powering (more accurate than exp(T·log z)). */
function complexPower(re: number, im: number, t: number, out: Float64Array): void {
  let rr = 1;
  let ri = 0;
  let br = re;
  let bi = im;
  let e = t;
  while (e > 0) {
    if (e % 2 === 1) {
      const x = rr * br - ri * bi;
      ri = rr * bi + ri * br;
      rr = x;
    }
    e = Math.floor(e / 2);
    if (e > 0) {
      const x = br * br - bi * bi;
      bi = 2 * br * bi;
      br = x;
    }
  }
  out[0] = rr;
  out[1] = ri;
}

/**
 * T-fold self-composition: irfft(rfft(pmf)^T), rolled so the result sits on the same (symmetric,
 * even-sized) grid, whose shift grows to T times the single-step one (Opacus `_compose_fourier`).
 */
export function composeSelf(d: DiscretePrv, t: number): DiscretePrv {
  const n = d.pmf.length;
  if (n % 2 !== 0) throw new RangeError("can only compose evenly sized discrete PRVs");
  if (t === 1) return { pmf: Float64Array.from(d.pmf), domain: d.domain };
  const spec = rfft(d.pmf);
  const buf = new Float64Array(2);
  for (let k = 0; k < spec.re.length; k++) {
    complexPower(spec.re[k], spec.im[k], t, buf);
    spec.re[k] = buf[0];
    spec.im[k] = buf[1];
  }
  const composed = irfft(spec, n);
  let m = t - 1;
  if (t % 2 === 0) m += n / 2;
  m %= n;
  const pmf = new Float64Array(n);
  for (let j = 0; j < n; j++) pmf[(j + m) % n] = composed[j];
  return { pmf, domain: shiftRight(d.domain, d.domain.shifts * (t - 1)) };
}

/** Composition of two discrete PRVs on the same grid: the centred part of their linear convolution. */
export function composePair(left: DiscretePrv, right: DiscretePrv): DiscretePrv {
  const n = left.pmf.length;
  const full = convolve(left.pmf, right.pmf);
  const start = (n - 1) >> 1; // scipy.signal.convolve(mode="same")
  return { pmf: full.slice(start, start + n), domain: shiftRight(left.domain, right.domain.shifts) };
}

/** Self-compose each, then convolve neighbours pairwise until one remains (Opacus's tree order). */
export function composeHeterogeneous(dprvs: readonly DiscretePrv[], counts: readonly number[]): DiscretePrv {
  if (dprvs.length !== counts.length || dprvs.length === 0) {
    throw new RangeError("one composition count per discrete PRV is required");
  }
  let level = dprvs.map((d, i) => composeSelf(d, counts[i]));
  while (level.length > 1) {
    const next: DiscretePrv[] = [];
    if (level.length % 2 === 1) next.push(level.pop()!);
    for (let i = 0; i + 1 < level.length; i += 2) next.push(composePair(level[i], level[i + 1]));
    level = next;
  }
  return level[0];
}

export interface EpsilonBounds {
  lower: number;
  estimate: number;
  upper: number;
}

/** numpy.searchsorted(arr, key, side="left"), including its exact bisection on unsorted input. */
function searchSortedLeft(arr: Float64Array, key: number): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = lo + ((hi - lo) >> 1);
    if (arr[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** ε bounds from the composed discrete PRV (Opacus `DiscretePRV.compute_epsilon`). */
export function epsilonBounds(
  d: DiscretePrv,
  delta: number,
  deltaError: number,
  epsError: number,
): EpsilonBounds {
  if (delta <= 0) return { lower: Infinity, estimate: Infinity, upper: Infinity };
  if (LONG_DOUBLE_EPS * d.domain.size > delta - deltaError) {
    throw new AccountantError(
      "PRV_DELTA_TOO_SMALL",
      "floating-point error would dominate at this delta; increase delta or use the rdp accountant",
    );
  }
  const n = d.pmf.length;
  const t = domainPoints(d.domain);
  const p = d.pmf;
  const d1 = new Float64Array(n);
  const d2 = new Float64Array(n);
  let c1 = 0;
  let c2 = 0;
  for (let i = n - 1; i >= 0; i--) {
    c1 += p[i];
    c2 += p[i] * Math.exp(-t[i]);
    d1[i] = c1;
    d2[i] = c2;
  }
  const ndelta = new Float64Array(n);
  for (let i = 0; i < n; i++) ndelta[i] = Math.exp(t[i]) * d2[i] - d1[i];
  const findEpsilon = (target: number): number => {
    const i = searchSortedLeft(ndelta, -target);
    if (i <= 0 || i >= n) {
      throw new AccountantError("PRV_EPSILON_OUT_OF_DOMAIN", "cannot compute epsilon inside the PRV domain");
    }
    return Math.log((d1[i] - target) / d2[i]);
  };
  return {
    upper: findEpsilon(delta - deltaError) + epsError,
    lower: findEpsilon(delta + deltaError) - epsError,
    estimate: findEpsilon(delta),
  };
}
