/**
 * Discrete Fourier transforms in float64 for the PRV accountant: an iterative radix-2 complex FFT,
 * Bluestein's chirp-z algorithm for other lengths (the PRV grid size is fixed by the accounting,
 * not chosen for the FFT), real transforms through a half-length complex one, and linear
 * convolution. Arrays are split into real and imaginary parts.
 */

export interface ComplexArray {
  re: Float64Array;
  im: Float64Array;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

export function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

interface Radix2Plan {
  n: number;
  cos: Float64Array;
  sin: Float64Array;
  rev: Uint32Array;
}

const radix2Plans = new Map<number, Radix2Plan>();

function radix2Plan(n: number): Radix2Plan {
  let plan = radix2Plans.get(n);
  if (plan) return plan;
  const half = n >> 1;
  const cos = new Float64Array(half);
  const sin = new Float64Array(half);
  // Twiddles from Math.cos/sin of each angle directly (no recurrence, so no error build-up).
  for (let k = 0; k < half; k++) {
    const a = (-2 * Math.PI * k) / n;
    cos[k] = Math.cos(a);
    sin[k] = Math.sin(a);
  }
  const rev = new Uint32Array(n);
  let bits = 0;
  while (1 << bits < n) bits++;
  for (let i = 0; i < n; i++) {
    let r = 0;
    for (let b = 0, x = i; b < bits; b++, x >>= 1) r = (r << 1) | (x & 1);
    rev[i] = r >>> 0;
  }
  plan = { n, cos, sin, rev };
  if (radix2Plans.size > 8) radix2Plans.clear();
  radix2Plans.set(n, plan);
  return plan;
}

/** In-place radix-2 FFT; `inverse` uses e^{+2πi…} and does not scale. */
function fftRadix2(re: Float64Array, im: Float64Array, inverse: boolean): void {
  const n = re.length;
  if (n <= 1) return;
  const { cos, sin, rev } = radix2Plan(n);
  for (let i = 0; i < n; i++) {
    const j = rev[i];
    if (j > i) {
      let t = re[i];
      re[i] = re[j];
      re[j] = t;
      t = im[i];
      im[i] = im[j];
      im[j] = t;
    }
  }
  const sign = inverse ? -1 : 1;
  for (let size = 2; size <= n; size *= 2) {
    const half = size >> 1;
    const step = n / size;
    for (let start = 0; start < n; start += size) {
      for (let k = 0, t = 0; k < half; k++, t += step) {
        const wr = cos[t];
        const wi = sign * sin[t];
        const a = start + k;
        const b = a + half;
        const xr = re[b] * wr - im[b] * wi;
        const xi = re[b] * wi + im[b] * wr;
        re[b] = re[a] - xr;
        im[b] = im[a] - xi;
        re[a] += xr;
        im[a] += xi;
      }
    }
  }
}

interface BluesteinPlan {
  n: number;
  m: number;
  /** chirp w_k = e^{-iπk²/n} */
  wr: Float64Array;
  wi: Float64Array;
  /** FFT of the conjugate chirp, laid out circularly in length m */
  br: Float64Array;
  bi: Float64Array;
}

const bluesteinPlans = new Map<number, BluesteinPlan>();

function bluesteinPlan(n: number): BluesteinPlan {
  let plan = bluesteinPlans.get(n);
  if (plan) return plan;
  const m = nextPowerOfTwo(2 * n - 1);
  const wr = new Float64Array(n);
  const wi = new Float64Array(n);
  const twoN = 2 * n;
  for (let k = 0; k < n; k++) {
    // k² mod 2n keeps the angle small and exact (k² < 2^53 for every n we accept).
    const r = (k * k) % twoN;
    const a = (Math.PI * r) / n;
    wr[k] = Math.cos(a);
    wi[k] = -Math.sin(a);
  }
  const br = new Float64Array(m);
  const bi = new Float64Array(m);
  br[0] = wr[0];
  bi[0] = -wi[0];
  for (let k = 1; k < n; k++) {
    br[k] = br[m - k] = wr[k];
    bi[k] = bi[m - k] = -wi[k];
  }
  fftRadix2(br, bi, false);
  plan = { n, m, wr, wi, br, bi };
  if (bluesteinPlans.size > 4) bluesteinPlans.clear();
  bluesteinPlans.set(n, plan);
  return plan;
}

function fftBluestein(re: Float64Array, im: Float64Array, inverse: boolean): void {
  const n = re.length;
  const { m, wr, wi, br, bi } = bluesteinPlan(n);
  // The inverse transform is the forward one on conjugated data, conjugated back.
  const s = inverse ? -1 : 1;
  const ar = new Float64Array(m);
  const ai = new Float64Array(m);
  for (let k = 0; k < n; k++) {
    const xr = re[k];
    const xi = s * im[k];
    ar[k] = xr * wr[k] - xi * wi[k];
    ai[k] = xr * wi[k] + xi * wr[k];
  }
  fftRadix2(ar, ai, false);
  for (let k = 0; k < m; k++) {
    const xr = ar[k] * br[k] - ai[k] * bi[k];
    const xi = ar[k] * bi[k] + ai[k] * br[k];
    ar[k] = xr;
    ai[k] = xi;
  }
  fftRadix2(ar, ai, true);
  const scale = 1 / m;
  for (let k = 0; k < n; k++) {
    const xr = ar[k] * scale;
    const xi = ai[k] * scale;
    re[k] = xr * wr[k] - xi * wi[k];
    im[k] = s * (xr * wi[k] + xi * wr[k]);
  }
}

/** In-place complex DFT of any length (unscaled in both directions, like numpy's forward). */
export function fft(re: Float64Array, im: Float64Array, inverse = false): void {
  if (re.length !== im.length) throw new RangeError("fft: re and im lengths differ");
  if (re.length <= 1) return;
  if (isPowerOfTwo(re.length)) fftRadix2(re, im, inverse);
  else fftBluestein(re, im, inverse);
}

/** Real DFT of an even-length signal: bins 0..n/2 (numpy.fft.rfft). */
export function rfft(x: Float64Array): ComplexArray {
  const n = x.length;
  if (n % 2 !== 0) throw new RangeError("rfft: length must be even");
  const h = n / 2;
  const zr = new Float64Array(h);
  const zi = new Float64Array(h);
  for (let k = 0; k < h; k++) {
    zr[k] = x[2 * k];
    zi[k] = x[2 * k + 1];
  }
  fft(zr, zi);
  const re = new Float64Array(h + 1);
  const im = new Float64Array(h + 1);
  for (let k = 0; k <= h; k++) {
    const a = k % h;
    const b = (h - k) % h;
    // Even and odd sub-sequence spectra from z = even + i·odd.
    const er = (zr[a] + zr[b]) / 2;
    const ei = (zi[a] - zi[b]) / 2;
    const or = (zi[a] + zi[b]) / 2;
    const oi = -(zr[a] - zr[b]) / 2;
    const ang = (-2 * Math.PI * k) / n;
    const c = Math.cos(ang);
    const s = Math.sin(ang);
    re[k] = er + (or * c - oi * s);
    im[k] = ei + (or * s + oi * c);
  }
  return { re, im };
}

/** Inverse of `rfft` for an even output length n (numpy.fft.irfft, scaled by 1/n). */
export function irfft(spec: ComplexArray, n: number): Float64Array {
  if (n % 2 !== 0) throw new RangeError("irfft: length must be even");
  const h = n / 2;
  if (spec.re.length !== h + 1) throw new RangeError("irfft: spectrum length must be n/2 + 1");
  const zr = new Float64Array(h);
  const zi = new Float64Array(h);
  for (let k = 0; k < h; k++) {
    const xr = spec.re[k];
    const xi = spec.im[k];
    const yr = spec.re[h - k];
    const yi = -spec.im[h - k];
    const er = (xr + yr) / 2;
    const ei = (xi + yi) / 2;
    const dr = (xr - yr) / 2;
    const di = (xi - yi) / 2;
    const ang = (2 * Math.PI * k) / n;
    const c = Math.cos(ang);
    const s = Math.sin(ang);
    const or = dr * c - di * s;
    const oi = dr * s + di * c;
    // z = E + i·O
    zr[k] = er - oi;
    zi[k] = ei + or;
  }
  fft(zr, zi, true);
  const out = new Float64Array(n);
  for (let k = 0; k < h; k++) {
    out[2 * k] = zr[k] / h;
    out[2 * k + 1] = zi[k] / h;
  }
  return out;
}

/** Full linear convolution of two real sequences (length a + b - 1), through a power-of-two FFT. */
export function convolve(a: Float64Array, b: Float64Array): Float64Array {
  const len = a.length + b.length - 1;
  const m = Math.max(2, nextPowerOfTwo(len));
  const ar = new Float64Array(m);
  const ai = new Float64Array(m);
  ar.set(a);
  ai.set(b); // pack both real inputs into one complex transform
  fftRadix2(ar, ai, false);
  const pr = new Float64Array(m);
  const pi = new Float64Array(m);
  for (let k = 0; k < m; k++) {
    const j = (m - k) % m;
    // A[k] = (Z[k] + conj Z[-k]) / 2, B[k] = (Z[k] - conj Z[-k]) / (2i)
    const Ar = (ar[k] + ar[j]) / 2;
    const Ai = (ai[k] - ai[j]) / 2;
    const Br = (ai[k] + ai[j]) / 2;
    const Bi = -(ar[k] - ar[j]) / 2;
    pr[k] = Ar * Br - Ai * Bi;
    pi[k] = Ar * Bi + Ai * Br;
  }
  fftRadix2(pr, pi, true);
  const out = new Float64Array(len);
  for (let k = 0; k < len; k++) out[k] = pr[k] / m;
  return out;
}
