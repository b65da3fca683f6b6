// Max pooling, tempered sigmoid and block transpose on every backend here, against float64
// references written out from the definitions.
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../random.js";
import { convOutput, type ConvGeometry, type Kernels } from "./kernels.js";
import { NativeKernels, nativeStatus } from "./native-kernels.js";
import { TypeScriptKernels } from "./ts-kernels.js";

const status = nativeStatus();
const backends: [string, Kernels][] = [["typescript", new TypeScriptKernels()]];
if (status.available) {
  for (const p of status.paths) backends.push([`native-${p}`, NativeKernels.create(p, 1)!]);
  backends.push([`native-${status.paths[0]} (2 threads)`, NativeKernels.create(status.paths[0], 2)!]);
}

function pool(o: Partial<ConvGeometry>): ConvGeometry {
  return {
    channels: 3,
    height: 7,
    width: 6,
    kernelH: 2,
    kernelW: 2,
    strideH: 1,
    strideW: 1,
    padH: 0,
    padW: 0,
    dilationH: 1,
    dilationW: 1,
    groups: 1,
    ...o,
  };
}

const POOLS: Record<string, ConvGeometry> = {
  "2x2 stride 1 (SampleConvNet)": pool({}),
  "2x2 stride 2": pool({ strideH: 2, strideW: 2 }),
  "3x3 stride 2 padding 1": pool({ kernelH: 3, kernelW: 3, strideH: 2, strideW: 2, padH: 1, padW: 1 }),
  "non-square 3x2, strides 2/1, padding 1/1": pool({ kernelH: 3, kernelW: 2, strideH: 2, padH: 1, padW: 1 }),
};

function random(rng: SeededRandom, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (2 * rng.uniform() - 1) * scale;
  return a;
}

/** The first maximum of each in-image window and its index within the example, from the definition. */
function refMaxPool(x: Float32Array, rows: number, g: ConvGeometry) {
  const { outH, outW } = convOutput(g);
  const image = g.channels * g.height * g.width;
  const y: number[] = [];
  const at: number[] = [];
  for (let n = 0; n < rows; n++)
    for (let c = 0; c < g.channels; c++)
      for (let oy = 0; oy < outH; oy++)
        for (let ox = 0; ox < outW; ox++) {
          let best = -Infinity;
          let arg = -1;
          for (let ky = 0; ky < g.kernelH; ky++)
            for (let kx = 0; kx < g.kernelW; kx++) {
              const iy = oy * g.strideH - g.padH + ky;
              const ix = ox * g.strideW - g.padW + kx;
              if (iy < 0 || iy >= g.height || ix < 0 || ix >= g.width) continue;
              const i = (c * g.height + iy) * g.width + ix;
              if (arg < 0 || x[n * image + i] > best) {
                best = x[n * image + i];
                arg = i;
              }
            }
          y.push(best);
          at.push(arg);
        }
  return { y, at };
}

describe.each(backends)("pooling and activation kernels (%s)", (_name, k) => {
  for (const [label, g] of Object.entries(POOLS)) {
    it(`max pooling equals the definition, value and first-maximum index: ${label}`, () => {
      const rng = new SeededRandom(`maxpool-${label}`);
      const rows = 3;
      const { outH, outW } = convOutput(g);
      const out = rows * g.channels * outH * outW;
      const x = random(rng, rows * g.channels * g.height * g.width);
      // Ties: quantised values, so many windows hold their maximum twice.
      for (let i = 0; i < x.length; i += 3) x[i] = Math.round(x[i] * 2) / 2;
      const y = new Float32Array(out).fill(Number.NaN);
      const argmax = new Int32Array(out).fill(-7);
      k.maxPool2d(x, rows, g, y, argmax);
      const ref = refMaxPool(x, rows, g);
      expect(Array.from(y)).toEqual(ref.y.map((v) => Math.fround(v)));
      expect(Array.from(argmax)).toEqual(ref.at);
    });

    it(`max-pool backward sends each output gradient to its argmax, summed (float64): ${label}`, () => {
      const rng = new SeededRandom(`maxpool-back-${label}`);
      const rows = 2;
      const image = g.channels * g.height * g.width;
      const { outH, outW } = convOutput(g);
      const per = g.channels * outH * outW;
      const x = random(rng, rows * image);
      const y = new Float32Array(rows * per);
      const argmax = new Int32Array(rows * per);
      k.maxPool2d(x, rows, g, y, argmax);
      const dy = random(rng, rows * per);
      const dx = new Float32Array(rows * image).fill(Number.NaN);
      k.maxPool2dBackward(dy, rows, g, argmax, dx);
      const ref = new Float64Array(rows * image);
      for (let o = 0; o < rows * per; o++) ref[Math.floor(o / per) * image + argmax[o]] += dy[o];
      for (let i = 0; i < ref.length; i++) expect(Math.abs(dx[i] - ref[i])).toBeLessThan(1e-6);
    });
  }

  it("max pooling propagates a NaN (as PyTorch does) and refuses an argmax outside its example", () => {
    const g = pool({ channels: 1, height: 2, width: 3 });
    const x = Float32Array.from([1, Number.NaN, 0, 2, 3, 4]);
    const y = new Float32Array(2);
    const argmax = new Int32Array(2);
    k.maxPool2d(x, 1, g, y, argmax);
    expect(Number.isNaN(y[0]) && Number.isNaN(y[1])).toBe(true);
    expect(Array.from(argmax)).toEqual([1, 1]);
    expect(() =>
      k.maxPool2dBackward(new Float32Array(2), 1, g, Int32Array.from([0, 6]), new Float32Array(6)),
    ).toThrow(/every argmax must index its example/);
    expect(() => k.maxPool2d(x, 1, pool({ channels: 1, height: 2, width: 3, padH: 2 }), y, argmax)).toThrow(
      /does not fit|at most half/,
    );
    expect(() => k.maxPool2d(x, 1, g, new Float32Array(1), argmax)).toThrow(/maxPool2d: y has fewer/);
  });

  for (const t of [
    { scale: 2, inverseTemperature: 2, offset: 1 },
    { scale: 1.58, inverseTemperature: 3, offset: 0.71 },
  ]) {
    it(`tempered sigmoid ${JSON.stringify(t)} and its backward equal the float64 definition`, () => {
      const rng = new SeededRandom("tempered");
      const n = 70_001; // above the native kernels' threading threshold when split, odd
      const x = random(rng, n, 6);
      const y = new Float32Array(n);
      k.temperedSigmoid(x, t, y);
      const dy = random(rng, n);
      const dx = new Float32Array(n);
      k.temperedSigmoidBackward(y, dy, t, dx);
      let worstY = 0;
      let worstDx = 0;
      for (let i = 0; i < n; i++) {
        const s = 1 / (1 + Math.exp(-t.inverseTemperature * x[i]));
        worstY = Math.max(worstY, Math.abs(y[i] - (t.scale * s - t.offset)));
        const d = dy[i] * t.scale * t.inverseTemperature * s * (1 - s);
        // The backward reads σ back from the float32 output: its error is that rounding, ×T.
        worstDx = Math.max(worstDx, Math.abs(dx[i] - d));
      }
      expect(worstY).toBeLessThan(1e-6 * t.scale);
      expect(worstDx).toBeLessThan(2e-6 * t.scale * t.inverseTemperature);
    });
  }

  it("transposeBlocks transposes each example's block exactly and refuses overlap", () => {
    const rng = new SeededRandom("transpose");
    const [rows, a, b] = [3, 13, 17];
    const x = random(rng, rows * a * b);
    const out = new Float32Array(rows * a * b).fill(Number.NaN);
    k.transposeBlocks(x, rows, a, b, out);
    for (let n = 0; n < rows; n++)
      for (let i = 0; i < a; i++)
        for (let j = 0; j < b; j++) expect(out[n * a * b + j * a + i]).toBe(x[n * a * b + i * b + j]);
    const buf = new Float32Array(100);
    expect(() => k.transposeBlocks(buf.subarray(0, 40), 1, 5, 8, buf.subarray(30, 70))).toThrow(/overlap/);
    expect(() => k.transposeBlocks(x, rows, a, b, new Float32Array(5))).toThrow(/out has fewer/);
  });
});
