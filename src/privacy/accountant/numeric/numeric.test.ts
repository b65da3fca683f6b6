import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { crExp, crLog } from "./correctly-rounded.js";
import { convolve, fft, irfft, rfft } from "./fft.js";
import { logAdd, logSub } from "./log-space.js";
import { integrate } from "./quadrature.js";
import { binom, erfc, erfcx, logErfc, logNdtr } from "./special.js";

// Reference values: mpmath at 50 digits, rounded to the nearest double (see the fixture's "about").
const ref = JSON.parse(
  readFileSync(new URL("../fixtures/special-functions.json", import.meta.url), "utf8"),
) as {
  erfc: [number, number][];
  erfcx: [number, number][];
  log_ndtr: [number, number][];
  binom: [number, number, number][];
  log: [number, number][];
  exp: [number, number][];
};

const rel = (a: number, b: number) => (a === b ? 0 : Math.abs(a - b) / Math.abs(b));

describe("special functions against mpmath", () => {
  it("erfc (Cody) is accurate to a few ulps over the whole line, deep tail included", () => {
    for (const [x, want] of ref.erfc) expect(rel(erfc(x), want), `erfc(${x})`).toBeLessThan(4e-15);
  });

  it("erfcx is accurate and does not overflow for large x", () => {
    for (const [x, want] of ref.erfcx) expect(rel(erfcx(x), want), `erfcx(${x})`).toBeLessThan(4e-15);
  });

  it("log_ndtr keeps relative accuracy for very negative and large positive arguments", () => {
    for (const [a, want] of ref.log_ndtr) {
      // ~1 ulp in the asymptotic (very negative) range that the RDP series depends on. In the upper
      // tail log_ndtr ≈ -Φ(-a), whose relative sensitivity to the rounding of a/√2 is ~a²·ulp.
      expect(rel(logNdtr(a), want), `log_ndtr(${a})`).toBeLessThan(
        a < -1 ? 2e-15 : Math.max(1e-14, a * a * 2.3e-16),
      );
    }
    expect(logNdtr(-Infinity)).toBe(-Infinity);
    expect(logNdtr(Infinity) === 0).toBe(true);
  });

  it("log_erfc(x) = log(erfc(x)) where erfc itself underflows", () => {
    // erfc(40) ≈ 1e-697 is below double range; mpmath: log(erfc(40)) = -1604.2615566532736.
    expect(rel(logErfc(40), -1604.2615566532736)).toBeLessThan(1e-15);
    expect(rel(logErfc(0.5), -0.7350111298370844)).toBeLessThan(2e-15);
  });

  it("binomials (integer and generalised) match exact values, with their signs", () => {
    for (const [n, k, want] of ref.binom) {
      const got = binom(n, k);
      if (want === 0) expect(got, `C(${n},${k})`).toBe(0);
      // SciPy's product formula loses a few ulps per factor like (11 + 8.1) - 19; so does this one.
      else expect(rel(got, want), `C(${n},${k})`).toBeLessThan(5e-14);
    }
    // Bit-for-bit what scipy.special.binom 1.17.1 returns (same multiplication order).
    expect(binom(8.1, 19)).toBe(1.159616745551278e-7);
    expect(binom(8.1, 4)).toBe(74.54733749999998);
    expect(binom(1.1, 3)).toBe(-0.016500000000000008);
    expect(binom(10.9, 12)).toBe(-0.006110795133834703);
    expect(binom(63, 19)).toBe(6131164307078474);
    expect(binom(1.1, 3)).toBeLessThan(0); // the generalised series alternates once k > α + 1
    expect(binom(-2, 1)).toBeNaN(); // negative integer n is undefined, as in SciPy
    expect(() => binom(5, 1.5)).toThrow(RangeError);
  });

  it("crLog and crExp round to nearest (V8's Math.log/exp do not always)", () => {
    for (const [x, want] of ref.log) expect(crLog(x), `log(${x})`).toBe(want);
    for (const [x, want] of ref.exp) expect(crExp(x), `exp(${x})`).toBe(want);
    expect(crLog(0)).toBe(-Infinity);
    expect(crLog(-1)).toBeNaN();
    expect(crLog(Infinity)).toBe(Infinity);
    expect(crExp(800)).toBe(Infinity);
    expect(crExp(-800)).toBe(0);
  });
});

describe("log-space helpers (Opacus _log_add/_log_sub edge cases)", () => {
  it("adds and subtracts in log space", () => {
    expect(rel(logAdd(Math.log(2), Math.log(3)), Math.log(5))).toBeLessThan(1e-15);
    expect(logAdd(-Infinity, 1.5)).toBe(1.5);
    expect(logAdd(-Infinity, -Infinity)).toBe(-Infinity);
    expect(rel(logSub(Math.log(5), Math.log(3)), Math.log(2))).toBeLessThan(1e-15);
    expect(logSub(2, -Infinity)).toBe(2);
    expect(logSub(2, 2)).toBe(-Infinity);
    expect(logSub(1000, 0)).toBe(1000); // expm1 overflow returns x, like Opacus's OverflowError branch
    expect(() => logSub(1, 2)).toThrow(/negative/);
  });
});

function naiveDft(re: number[], im: number[], inverse = false): [number[], number[]] {
  const n = re.length;
  const outR: number[] = [];
  const outI: number[] = [];
  for (let k = 0; k < n; k++) {
    let sr = 0;
    let si = 0;
    for (let j = 0; j < n; j++) {
      const a = ((inverse ? 2 : -2) * Math.PI * ((j * k) % n)) / n;
      sr += re[j] * Math.cos(a) - im[j] * Math.sin(a);
      si += re[j] * Math.sin(a) + im[j] * Math.cos(a);
    }
    outR.push(sr);
    outI.push(si);
  }
  return [outR, outI];
}

describe("FFT", () => {
  const signal = (n: number, seed: number) =>
    Array.from({ length: n }, (_, i) => Math.sin(seed * i + 0.3) + ((i * 7) % 5) / 5);

  it("complex FFT matches the naive DFT for power-of-two and other lengths (Bluestein)", () => {
    for (const n of [1, 2, 8, 64, 3, 6, 10, 30, 97, 250]) {
      const re = signal(n, 1.3);
      const im = signal(n, 0.7);
      const [wr, wi] = naiveDft(re, im);
      const fr = Float64Array.from(re);
      const fi = Float64Array.from(im);
      fft(fr, fi);
      for (let k = 0; k < n; k++) {
        expect(Math.abs(fr[k] - wr[k]), `n=${n} k=${k}`).toBeLessThan(1e-11 * n);
        expect(Math.abs(fi[k] - wi[k]), `n=${n} k=${k}`).toBeLessThan(1e-11 * n);
      }
      const [ir, ii] = naiveDft(re, im, true);
      fr.set(re);
      fi.set(im);
      fft(fr, fi, true);
      for (let k = 0; k < n; k++)
        expect(Math.abs(fr[k] - ir[k]) + Math.abs(fi[k] - ii[k])).toBeLessThan(2e-11 * n);
    }
  });

  it("rfft gives the first n/2+1 DFT bins and irfft inverts it", () => {
    for (const n of [2, 8, 12, 30, 256, 1000]) {
      const x = signal(n, 0.9);
      const [wr, wi] = naiveDft(x, new Array(n).fill(0));
      const spec = rfft(Float64Array.from(x));
      expect(spec.re.length).toBe(n / 2 + 1);
      for (let k = 0; k <= n / 2; k++) {
        expect(Math.abs(spec.re[k] - wr[k]) + Math.abs(spec.im[k] - wi[k]), `n=${n} k=${k}`).toBeLessThan(
          1e-11 * n,
        );
      }
      const back = irfft(spec, n);
      for (let i = 0; i < n; i++) expect(Math.abs(back[i] - x[i])).toBeLessThan(1e-13 * n);
    }
  });

  it("convolve equals the direct sum", () => {
    const a = Float64Array.from(signal(37, 0.4));
    const b = Float64Array.from(signal(20, 1.9));
    const c = convolve(a, b);
    expect(c.length).toBe(56);
    for (let k = 0; k < c.length; k++) {
      let s = 0;
      for (let i = 0; i < a.length; i++) if (k - i >= 0 && k - i < b.length) s += a[i] * b[k - i];
      expect(Math.abs(c[k] - s)).toBeLessThan(1e-12);
    }
  });
});

describe("adaptive quadrature", () => {
  it("integrates smooth and peaked functions to near machine precision", () => {
    expect(rel(integrate(Math.exp, 0, 1), Math.E - 1)).toBeLessThan(1e-14);
    expect(
      rel(
        integrate((t) => 1 / (1 + t * t), -50, 50),
        2 * Math.atan(50),
      ),
    ).toBeLessThan(1e-12);
    // A CDF-like steep step (the PRV mean integrates CDFs): ∫ logistic((t - 0.3)/s) over [-5, 5]
    // = s·[log(1 + e^{4.7/s}) - log(1 + e^{-5.3/s})] = 4.7 to double precision for s = 1e-3.
    const step = (t: number) => 1 / (1 + Math.exp(-(t - 0.3) / 1e-3));
    expect(rel(integrate(step, -5, 5), 4.7)).toBeLessThan(1e-12);
    expect(integrate(Math.exp, 1, 1)).toBe(0);
  });
});
