// Native-only behaviour: the C++ argument backstop, gemm threading, and loading the addon from
// several worker threads at once (context-aware addon, per-thread pools torn down on exit).
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../random.js";
import { NATIVE_ADDON_PATH, NativeKernels, nativeStatus } from "./native-kernels.js";
import { gaussianNoiseWords } from "./kernels.js";

const status = nativeStatus();
const reason = status.available ? "" : status.reason;

function randomArray(rng: SeededRandom, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = 2 * rng.uniform() - 1;
  return a;
}

describe.skipIf(!status.available)(`native addon${reason ? ` (skipped: ${reason})` : ""}`, () => {
  it("checks arguments in C++ too, so a caller that bypasses the wrapper cannot read or write out of bounds", () => {
    const addon = createRequire(import.meta.url)(NATIVE_ADDON_PATH);
    const ops = addon.create("generic", 1);
    const f = (n: number) => new Float32Array(n);
    const calls: [string, () => void][] = [
      ["a has fewer", () => ops.gemm(false, false, 2, 2, 2, f(3), f(4), f(4), 0)],
      ["c must be a Float32Array", () => ops.gemm(false, false, 1, 1, 1, f(1), f(1), new Float64Array(1), 0)],
      ["m must be an integer", () => ops.gemm(false, false, 2 ** 31, 1, 1, f(1), f(1), f(1), 0)],
      ["too few arguments", () => ops.gemm(false, false, 1, 1, 1, f(1), f(1), f(1))],
      [
        "must not overlap",
        () => {
          const buf = f(8);
          ops.gemm(false, false, 2, 2, 2, buf.subarray(0, 4), f(4), buf.subarray(3, 7), 0);
        },
      ],
      [
        "every label",
        () => ops.softmaxCrossEntropy(f(2), Int32Array.from([5]), 1, 2, new Float64Array(1), f(2)),
      ],
      ["not enough random words", () => ops.addGaussianNoise(f(3), 1, new Uint32Array(3))],
      ["unknown kind", () => ops.activation(7, f(1), f(1))],
      ["x and y must have the same length", () => ops.axpy(1, f(2), f(1))],
      ["setThreads", () => ops.setThreads(0)],
      ["not supported", () => addon.create("sse9", 1)],
      ["geometry must be an Int32Array", () => ops.im2col(f(36), 1, new Int32Array(11), f(36))],
      [
        "entries out of range",
        () => ops.im2col(f(36), 1, Int32Array.from([1, 6, 6, 0, 1, 1, 1, 0, 0, 1, 1, 1]), f(36)),
      ],
      [
        "groups must divide channels",
        () => ops.im2col(f(72), 1, Int32Array.from([2, 6, 6, 3, 3, 1, 1, 0, 0, 1, 1, 3]), f(999)),
      ],
      [
        "does not fit",
        () => ops.im2col(f(36), 1, Int32Array.from([1, 6, 6, 9, 1, 1, 1, 0, 0, 1, 1, 1]), f(36)),
      ],
      [
        "im2col: a buffer is too short",
        () => ops.im2col(f(36), 1, Int32Array.from([1, 6, 6, 3, 3, 1, 1, 0, 0, 1, 1, 1]), f(143)),
      ],
      [
        "col2im: a buffer is too short",
        () => ops.col2im(f(144), 2, Int32Array.from([1, 6, 6, 3, 3, 1, 1, 0, 0, 1, 1, 1]), f(36)),
      ],
    ];
    for (const [msg, call] of calls) {
      let err: (Error & { code?: string }) | undefined;
      try {
        call();
      } catch (e) {
        err = e as Error;
      }
      expect(err?.code, msg).toBe("KERNEL_ARGUMENT_INVALID");
      expect(err?.message, msg).toContain(msg);
    }
  });

  it("2-thread gemm gives bit-identical results to 1 thread (split on whole tiles), for splits on n and on m", () => {
    const one = NativeKernels.create(undefined, 1)!;
    const two = NativeKernels.create(undefined, 2)!;
    expect(two.threads).toBe(2);
    const rng = new SeededRandom("threads");
    for (const [m, n, k, ta, tb] of [
      [256, 256, 784, false, true],
      [784, 256, 256, true, false],
      [500, 40, 300, false, false],
    ] as const) {
      const a = randomArray(rng, m * k);
      const b = randomArray(rng, k * n);
      const c1 = randomArray(rng, m * n);
      const c2 = c1.slice();
      one.gemm(ta, tb, m, n, k, a, b, c1, 0.5);
      two.gemm(ta, tb, m, n, k, a, b, c2, 0.5);
      expect(Buffer.from(c2.buffer).equals(Buffer.from(c1.buffer))).toBe(true);
    }
    two.setThreads(1);
    expect(two.threads).toBe(1);
  });

  it("2-thread Gaussian noise is bit-identical to 1 thread (split on whole pairs, odd length too)", () => {
    const one = NativeKernels.create(undefined, 1)!;
    const two = NativeKernels.create(undefined, 2)!;
    const rng = new SeededRandom("noise-threads");
    for (const n of [200_001, 131_072]) {
      const words = new Uint32Array(gaussianNoiseWords(n));
      rng.fillUint32(words);
      const y1 = randomArray(rng, n);
      const y2 = y1.slice();
      one.addGaussianNoise(y1, 0.7, words);
      two.addGaussianNoise(y2, 0.7, words);
      expect(Buffer.from(y2.buffer).equals(Buffer.from(y1.buffer))).toBe(true);
    }
  });

  it("loads in several worker threads at once, each with its own thread pool", async () => {
    const m = 200;
    const n = 180;
    const k = 300;
    const rng = new SeededRandom("workers");
    const a = randomArray(rng, m * k);
    const b = randomArray(rng, k * n);
    const want = new Float32Array(m * n);
    NativeKernels.create(undefined, 1)!.gemm(false, false, m, n, k, a, b, want, 0);
    const code = `
      const { parentPort, workerData } = require("node:worker_threads");
      const addon = require(workerData.path);
      const ops = addon.create(addon.paths()[0], 2);
      const { m, n, k, a, b } = workerData;
      const c = new Float32Array(m * n);
      for (let r = 0; r < 20; r++) ops.gemm(false, false, m, n, k, a, b, c, 0);
      parentPort.postMessage(c);
    `;
    const run = () =>
      new Promise<Float32Array>((resolve, reject) => {
        const w = new Worker(code, { eval: true, workerData: { path: NATIVE_ADDON_PATH, m, n, k, a, b } });
        let result: Float32Array | undefined;
        w.on("message", (c: Float32Array) => (result = c));
        w.on("error", reject);
        w.on("exit", (exitCode) =>
          exitCode === 0 && result ? resolve(result) : reject(new Error(`worker exit ${exitCode}`)),
        );
      });
    const results = await Promise.all([run(), run(), run()]);
    for (const c of results) expect(Buffer.from(c.buffer).equals(Buffer.from(want.buffer))).toBe(true);
  });
});
