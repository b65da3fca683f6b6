// One suite, run against every backend available here: the TypeScript kernels, and the native
// addon on each CPU path this machine supports (plus the best path with 2 gemm threads).
// Every op is checked against an independent float64 reference written out below.
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../random.js";
import { KernelArgumentError } from "./kernel-args.js";
import { gaussianNoiseWords, type ActivationKind, type Kernels } from "./kernels.js";
import { NativeKernels, nativeStatus } from "./native-kernels.js";
import { TypeScriptKernels } from "./ts-kernels.js";

const U = 2 ** -24; // unit roundoff of float32

const status = nativeStatus();
const backends: [string, () => Kernels][] = [["typescript", () => new TypeScriptKernels()]];
if (status.available) {
  for (const p of status.paths) backends.push([`native-${p}`, () => NativeKernels.create(p, 1)!]);
  backends.push([`native-${status.paths[0]} (2 threads)`, () => NativeKernels.create(status.paths[0], 2)!]);
}

function randomArray(rng: SeededRandom, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (2 * rng.uniform() - 1) * scale;
  return a;
}

/** A view at an odd float offset inside a larger buffer, like the model's scratch views. */
function view(src: Float32Array, offset = 3): Float32Array {
  const big = new Float32Array(src.length + offset + 5).fill(Number.NaN);
  big.set(src, offset);
  return big.subarray(offset, offset + src.length);
}

/** C = op(A) op(B) in float64, with Σ|a||b| per entry for the error bound. */
function refGemm(
  ta: boolean,
  tb: boolean,
  m: number,
  n: number,
  k: number,
  a: Float32Array,
  b: Float32Array,
) {
  const c = new Float64Array(m * n);
  const abs = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      let t = 0;
      for (let p = 0; p < k; p++) {
        const x = (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
        s += x;
        t += Math.abs(x);
      }
      c[i * n + j] = s;
      abs[i * n + j] = t;
    }
  return { c, abs };
}

// m, n, k: unit and tiny sizes, odd and prime sizes, exact tiles (12x32, 6x16), one past tiles
// and past the k/m blocks (256, 144), wider than the n block (2048), and sizes that the
// threaded path splits along n and along m.
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 7, 1],
  [7, 1, 3],
  [2, 3, 4],
  [13, 17, 19],
  [31, 37, 41],
  [12, 32, 256],
  [13, 33, 257],
  [64, 64, 30],
  [3, 2100, 5],
  [100, 70, 300],
  [300, 20, 400],
  [150, 129, 513],
];
const BETAS = [0, 1, 0.5, -2];

describe.each(backends)("kernels: %s", (_name, make) => {
  const k = make();

  it("gemm matches a float64 reference for every shape, transpose and beta", () => {
    const rng = new SeededRandom("gemm");
    for (const [m, n, kk] of SHAPES) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const a = view(randomArray(rng, m * kk));
          const b = view(randomArray(rng, kk * n), 1);
          const ref = refGemm(ta, tb, m, n, kk, a, b);
          for (const beta of BETAS) {
            const c0 = randomArray(rng, m * n);
            const cBig = new Float32Array(m * n + 3).fill(7);
            const c = cBig.subarray(0, m * n);
            if (beta === 0)
              c.fill(Number.NaN); // beta = 0 must ignore what C holds
            else c.set(c0);
            k.gemm(ta, tb, m, n, kk, a, b, c, beta);
            let worst = 0;
            for (let i = 0; i < m * n; i++) {
              const bc = beta === 0 ? 0 : beta * c0[i];
              const want = ref.c[i] + bc;
              const bound = (kk + 4) * U * (ref.abs[i] + Math.abs(bc)) + 1e-30;
              worst = Math.max(worst, Math.abs(c[i] - want) / bound);
            }
            expect(worst, `m=${m} n=${n} k=${kk} transA=${ta} transB=${tb} beta=${beta}`).toBeLessThanOrEqual(
              1,
            );
            expect([...cBig.subarray(m * n)], "gemm wrote past m*n").toEqual([7, 7, 7]);
          }
        }
      }
    }
  });

  it("gemm with k = 0 scales C by beta, and with m or n = 0 does nothing", () => {
    const c = Float32Array.from([1, 2, 3, 4]);
    k.gemm(false, false, 2, 2, 0, new Float32Array(0), new Float32Array(0), c, 0.5);
    expect([...c]).toEqual([0.5, 1, 1.5, 2]);
    c.fill(Number.NaN);
    k.gemm(true, true, 2, 2, 0, new Float32Array(0), new Float32Array(0), c, 0);
    expect([...c]).toEqual([0, 0, 0, 0]);
    c.fill(9);
    k.gemm(false, false, 0, 2, 3, new Float32Array(0), new Float32Array(6), c, 0);
    k.gemm(false, false, 2, 0, 3, new Float32Array(6), new Float32Array(0), c, 0);
    expect([...c]).toEqual([9, 9, 9, 9]);
  });

  it("rowSumSquares accumulates in float64", () => {
    const rng = new SeededRandom("rss");
    for (const [rows, cols] of [
      [0, 5],
      [1, 1],
      [3, 7],
      [5, 8],
      [17, 33],
      [64, 784],
    ]) {
      const x = view(randomArray(rng, rows * cols, 3));
      const out = new Float64Array(rows + 1).fill(-1);
      k.rowSumSquares(x, rows, cols, out);
      for (let i = 0; i < rows; i++) {
        let s = 0;
        for (let j = 0; j < cols; j++) s += x[i * cols + j] ** 2;
        expect(Math.abs(out[i] - s)).toBeLessThanOrEqual(1e-14 * s);
      }
      expect(out[rows]).toBe(-1);
    }
  });

  it("addRowVector, scaleRows (also in place) and axpy round once per element", () => {
    const rng = new SeededRandom("elementwise");
    for (const [rows, cols] of [
      [1, 1],
      [3, 7],
      [9, 40],
      [33, 17],
    ]) {
      const x0 = randomArray(rng, rows * cols, 10);
      const v = randomArray(rng, cols);
      const x = view(x0);
      k.addRowVector(x, rows, cols, v);
      for (let i = 0; i < rows * cols; i++) expect(x[i]).toBe(Math.fround(x0[i] + v[i % cols]));

      const s = randomArray(rng, rows, 4);
      const out = new Float32Array(rows * cols);
      k.scaleRows(x0, rows, cols, s, out);
      for (let i = 0; i < rows * cols; i++) expect(out[i]).toBe(Math.fround(x0[i] * s[Math.floor(i / cols)]));
      const inPlace = x0.slice();
      k.scaleRows(inPlace, rows, cols, s, inPlace);
      expect(inPlace).toEqual(out);

      const y0 = randomArray(rng, rows * cols);
      const y = y0.slice();
      const alpha = -0.1234567891234; // stays a double: one rounding per element
      k.axpy(alpha, x0, y);
      for (let i = 0; i < y.length; i++) expect(y[i]).toBe(Math.fround(y0[i] + alpha * x0[i]));
    }
  });

  it("colSum with and without weights, for every beta", () => {
    const rng = new SeededRandom("colsum");
    for (const [rows, cols] of [
      [1, 1],
      [5, 3],
      [64, 130],
      [7, 1100],
    ]) {
      const x = view(randomArray(rng, rows * cols, 2));
      for (const w of [null, randomArray(rng, rows, 3)]) {
        for (const beta of [0, 1, 0.3]) {
          const out0 = randomArray(rng, cols);
          const out = beta === 0 ? new Float32Array(cols).fill(Number.NaN) : out0.slice();
          k.colSum(x, rows, cols, w, out, beta);
          for (let j = 0; j < cols; j++) {
            let s = beta === 0 ? 0 : beta * out0[j];
            let t = Math.abs(s);
            for (let i = 0; i < rows; i++) {
              const term = (w ? w[i] : 1) * x[i * cols + j];
              s += term;
              t += Math.abs(term);
            }
            expect(Math.abs(out[j] - s)).toBeLessThanOrEqual(U * Math.abs(s) + 1e-12 * t);
          }
        }
      }
    }
  });

  const activations: [ActivationKind, (v: number) => number, (v: number) => number][] = [
    ["relu", (v) => (v > 0 ? v : 0), (v) => (v > 0 ? 1 : 0)],
    ["tanh", (v) => Math.tanh(v), (v) => 1 - Math.tanh(v) ** 2],
    [
      "gelu",
      // PyTorch's approximate="tanh" GELU and its derivative, written out independently.
      (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))),
      (v) => {
        const u = Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3);
        const du = Math.sqrt(2 / Math.PI) * (1 + 3 * 0.044715 * v * v);
        return 0.5 * (1 + Math.tanh(u)) + 0.5 * v * (1 - Math.tanh(u) ** 2) * du;
      },
    ],
  ];

  it.each(activations)("activation %s and its backward (also in place)", (kind, f, df) => {
    const rng = new SeededRandom(`act-${kind}`);
    const x = randomArray(rng, 1001, 5);
    x[0] = 0;
    x[1] = -0;
    x[2] = 1e-30;
    const dy = randomArray(rng, 1001);
    const out = new Float32Array(1001);
    k.activation(kind, x, out);
    for (let i = 0; i < x.length; i++) {
      const want = f(x[i]);
      expect(Math.abs(out[i] - want), `x[${i}]`).toBeLessThanOrEqual(2 * U * Math.abs(want) + 1e-37);
    }
    const dx = dy.slice();
    k.activationBackward(kind, x, dx, dx); // out aliases dy
    for (let i = 0; i < x.length; i++) {
      const want = dy[i] * df(x[i]);
      expect(Math.abs(dx[i] - want), `x[${i}]`).toBeLessThanOrEqual(4 * U * Math.abs(want) + 1e-37);
    }
  });

  it("softmaxCrossEntropy: loss and gradient, stable for large logits", () => {
    const rng = new SeededRandom("xent");
    for (const [rows, classes, scale] of [
      [1, 1, 1],
      [4, 2, 3],
      [64, 10, 8],
      [5, 7, 900],
    ]) {
      const logits = randomArray(rng, rows * classes, scale);
      const labels = new Int32Array(rows).map(() => Math.floor(rng.uniform() * classes));
      const loss = new Float64Array(rows);
      const grad = new Float32Array(rows * classes);
      k.softmaxCrossEntropy(logits, labels, rows, classes, loss, grad);
      for (let i = 0; i < rows; i++) {
        const z = Array.from(logits.subarray(i * classes, (i + 1) * classes));
        const mx = Math.max(...z);
        const lse = mx + Math.log(z.reduce((s, v) => s + Math.exp(v - mx), 0));
        expect(Math.abs(loss[i] - (lse - z[labels[i]]))).toBeLessThanOrEqual(1e-12 * (1 + Math.abs(lse)));
        for (let c = 0; c < classes; c++) {
          const want = Math.exp(z[c] - lse) - (c === labels[i] ? 1 : 0);
          expect(Math.abs(grad[i * classes + c] - want)).toBeLessThanOrEqual(1e-7);
        }
      }
    }
  });

  /** The documented contract, in float64: u1 = (w0 + 1) 2^-32, u2 = w1 2^-32, z = r (cos, sin)(2 pi u2). */
  function boxMuller(y0: Float32Array, std: number, w: Uint32Array): Float64Array {
    const out = new Float64Array(y0.length);
    for (let i = 0, j = 0; i < y0.length; i += 2, j += 3) {
      const r =
        std * Math.sqrt(-2 * Math.log((w[j] * 2 ** 21 + Math.floor(w[j + 1] / 2 ** 11) + 1) / 2 ** 53));
      const t = (2 * Math.PI * w[j + 2]) / 2 ** 32;
      out[i] = y0[i] + r * Math.cos(t);
      if (i + 1 < y0.length) out[i + 1] = y0[i + 1] + r * Math.sin(t);
    }
    return out;
  }

  it("addGaussianNoise follows the Box-Muller contract exactly (edge words, odd length)", () => {
    const rng = new SeededRandom("noise-contract");
    const n = 4001; // odd: the last element uses only the cosine of the final pair
    const words = new Uint32Array(gaussianNoiseWords(n));
    rng.fillUint32(words);
    // Edge words: u1 at its extremes (2^-53 and 1), and angles 0, pi/2, pi, 3pi/2, just below 2pi.
    const edges = [0, 0xffffffff, 2 ** 30, 2 ** 31, 3 * 2 ** 30, 2 ** 29, 0xffffffff - 1, 1, 12345];
    edges.forEach((e, i) => {
      words[3 * i] = i % 2 ? 0 : 0xffffffff - i;
      words[3 * i + 1] = i % 2 ? 0 : 0xffffffff;
      words[3 * i + 2] = e;
    });
    words[60] = 0; // largest radius (pair 20): u1 = 2^-53, |z| up to 8.57
    words[61] = 0;
    words[63] = 0xffffffff; // radius 0 (pair 21): u1 = 1
    words[64] = 0xffffffff;
    const y0 = randomArray(rng, n);
    const y = y0.slice();
    const std = 1.7;
    k.addGaussianNoise(y, std, words);
    const want = boxMuller(y0, std, words);
    for (let i = 0; i < n; i++) {
      // Either neighbour of the float64 value is acceptable; anything further is not.
      expect(Math.abs(y[i] - want[i]), `element ${i}`).toBeLessThanOrEqual(2 * U * Math.abs(want[i]) + 1e-12);
    }
    expect(y[42]).toBe(y0[42]);
    expect(y[43]).toBe(y0[43]);
    // The tail is no longer cut at 6.66σ: the smallest u1 reaches √(2·53·ln 2)·std.
    expect(Math.hypot(y[40] - y0[40], y[41] - y0[41])).toBeCloseTo(Math.sqrt(2 * 53 * Math.LN2) * std, 3);
  });

  it("addGaussianNoise: mean, variance and tails of N(0, std^2) with a fixed seed", () => {
    const n = 200_000;
    const std = 2.5;
    const words = new Uint32Array(gaussianNoiseWords(n));
    new SeededRandom("noise-stats").fillUint32(words);
    const y = new Float32Array(n);
    k.addGaussianNoise(y, std, words);
    let s = 0;
    let s2 = 0;
    let within1 = 0;
    let beyond3 = 0;
    for (const v of y) {
      s += v;
      s2 += v * v;
      if (Math.abs(v) < std) within1++;
      if (Math.abs(v) > 3 * std) beyond3++;
    }
    const mean = s / n;
    const variance = s2 / n - mean * mean;
    // 5-sigma bounds of the estimators: sd(mean) = std/sqrt(n), sd(var) = std^2 sqrt(2/n).
    expect(Math.abs(mean)).toBeLessThan((5 * std) / Math.sqrt(n));
    expect(Math.abs(variance - std * std)).toBeLessThan(5 * std * std * Math.sqrt(2 / n));
    const p1 = 0.6826894921370859;
    expect(Math.abs(within1 / n - p1)).toBeLessThan(5 * Math.sqrt((p1 * (1 - p1)) / n));
    const p3 = 0.0026997960632601866;
    expect(Math.abs(beyond3 / n - p3)).toBeLessThan(5 * Math.sqrt((p3 * (1 - p3)) / n));
  });

  it("rejects bad arguments with KERNEL_ARGUMENT_INVALID, naming the argument", () => {
    const f = (n: number) => new Float32Array(n);
    const bad: [string, () => void][] = [
      ["a has fewer", () => k.gemm(false, false, 2, 2, 2, f(3), f(4), f(4), 0)],
      ["c has fewer", () => k.gemm(false, false, 2, 2, 2, f(4), f(4), f(3), 0)],
      ["m must be an integer", () => k.gemm(false, false, 1.5, 2, 2, f(4), f(4), f(4), 0)],
      ["k must be an integer", () => k.gemm(false, false, 1, 1, -1, f(4), f(4), f(4), 0)],
      ["beta must be a finite", () => k.gemm(false, false, 1, 1, 1, f(1), f(1), f(1), Number.NaN)],
      [
        "a must be a Float32Array",
        () => k.gemm(false, false, 1, 1, 1, new Float64Array(1) as never, f(1), f(1), 0),
      ],
      [
        "must not overlap",
        () => {
          const buf = f(8);
          k.gemm(false, false, 2, 2, 2, buf.subarray(0, 4), f(4), buf.subarray(2, 6), 0);
        },
      ],
      ["out has fewer", () => k.rowSumSquares(f(6), 2, 3, new Float64Array(1))],
      ["v has fewer", () => k.addRowVector(f(6), 2, 3, f(2))],
      ["w has fewer", () => k.colSum(f(6), 2, 3, f(1), f(3), 0)],
      ["s has fewer", () => k.scaleRows(f(6), 2, 3, f(1), f(6))],
      ["same length", () => k.axpy(1, f(3), f(4))],
      ["unknown activation", () => k.activation("swish" as never, f(3), f(3))],
      ["out is shorter", () => k.activationBackward("relu", f(3), f(3), f(2))],
      [
        "every label",
        () => k.softmaxCrossEntropy(f(4), Int32Array.from([0, 2]), 2, 2, new Float64Array(2), f(4)),
      ],
      [
        "every label",
        () => k.softmaxCrossEntropy(f(4), Int32Array.from([-1, 0]), 2, 2, new Float64Array(2), f(4)),
      ],
      ["not enough random words", () => k.addGaussianNoise(f(3), 1, new Uint32Array(3))],
      ["std must not be negative", () => k.addGaussianNoise(f(2), -1, new Uint32Array(2))],
      ["std must be a finite", () => k.addGaussianNoise(f(2), Number.POSITIVE_INFINITY, new Uint32Array(2))],
    ];
    for (const [msg, call] of bad) {
      let err: unknown;
      try {
        call();
      } catch (e) {
        err = e;
      }
      expect(err, msg).toBeInstanceOf(KernelArgumentError);
      expect((err as KernelArgumentError).code).toBe("KERNEL_ARGUMENT_INVALID");
      expect((err as Error).message).toContain(msg);
    }
  });
});

describe("native backend availability", () => {
  it.skipIf(status.available)(
    `native kernels are not built here, so only the TypeScript backend was tested (${status.available ? "" : status.reason})`,
    () => {},
  );
  it.runIf(status.available)("every supported CPU path was tested, generic included", () => {
    expect(status.available && status.paths).toContain("generic");
  });
});
