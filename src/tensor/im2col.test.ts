import { describe, expect, it } from "vitest";
import { SeededRandom } from "../random.js";
import { convOutput, type ConvGeometry, type Kernels } from "./kernels.js";
import { NativeKernels, nativeStatus } from "./native-kernels.js";
import { TypeScriptKernels } from "./ts-kernels.js";

const native = nativeStatus().available ? NativeKernels.create(undefined, 1) : null;
const backends: [string, Kernels][] = [["typescript", new TypeScriptKernels()]];
if (native) backends.push([native.name, native]);

function geometry(o: Partial<ConvGeometry>): ConvGeometry {
  return {
    channels: 2,
    height: 7,
    width: 6,
    kernelH: 3,
    kernelW: 3,
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

const GEOMETRIES: Record<string, ConvGeometry> = {
  plain: geometry({}),
  "stride 2, padding 1": geometry({ strideH: 2, strideW: 2, padH: 1, padW: 1 }),
  "dilation 2, padding 2": geometry({ dilationH: 2, dilationW: 2, padH: 2, padW: 2 }),
  "non-square kernel, mixed strides, padding wider than the kernel": geometry({
    kernelH: 2,
    kernelW: 4,
    strideH: 3,
    strideW: 2,
    padH: 3,
    padW: 1,
  }),
  "3 groups, stride 2, padding 1": geometry({
    channels: 6,
    groups: 3,
    strideH: 2,
    strideW: 2,
    padH: 1,
    padW: 1,
  }),
  "Opacus's first conv (8x8, stride 2, padding 3) on 28x28": geometry({
    channels: 1,
    height: 28,
    width: 28,
    kernelH: 8,
    kernelW: 8,
    strideH: 2,
    strideW: 2,
    padH: 3,
    padW: 3,
  }),
};

function random(rng: SeededRandom, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = 2 * rng.uniform() - 1;
  return a;
}

/** Direct float64 cross-correlation of one output channel with weights w[c, ky, kx], from the definition. */
function directConv(x: Float32Array, n: number, g: ConvGeometry, w: Float64Array): Float64Array {
  const { outH, outW } = convOutput(g);
  const y = new Float64Array(outH * outW);
  for (let oy = 0; oy < outH; oy++)
    for (let ox = 0; ox < outW; ox++) {
      let s = 0;
      for (let c = 0; c < g.channels; c++)
        for (let ky = 0; ky < g.kernelH; ky++)
          for (let kx = 0; kx < g.kernelW; kx++) {
            const iy = oy * g.strideH - g.padH + ky * g.dilationH;
            const ix = ox * g.strideW - g.padW + kx * g.dilationW;
            if (iy < 0 || iy >= g.height || ix < 0 || ix >= g.width) continue;
            s +=
              w[(c * g.kernelH + ky) * g.kernelW + kx] *
              x[((n * g.channels + c) * g.height + iy) * g.width + ix];
          }
      y[oy * outW + ox] = s;
    }
  return y;
}

describe.each(backends)("im2col / col2im (%s)", (_name, k) => {
  for (const [label, g] of Object.entries(GEOMETRIES)) {
    it(`unfolded patches times a kernel equal a direct float64 convolution: ${label}`, () => {
      const rng = new SeededRandom(`im2col-${label}`);
      const rows = 3;
      const { outH, outW } = convOutput(g);
      const P = outH * outW;
      const patch = g.channels * g.kernelH * g.kernelW;
      const x = random(rng, rows * g.channels * g.height * g.width);
      const cols = new Float32Array(rows * patch * P).fill(Number.NaN);
      k.im2col(x, rows, g, cols);
      const w = Float64Array.from(random(rng, patch));
      let maxErr = 0;
      for (let n = 0; n < rows; n++) {
        const ref = directConv(x, n, g, w);
        for (let p = 0; p < P; p++) {
          let s = 0;
          // Column j of group q's block is weight index q·Kg + j (channels are group-major).
          const Kg = patch / g.groups;
          for (let q = 0; q < g.groups; q++)
            for (let j = 0; j < Kg; j++) s += w[q * Kg + j] * cols[((n * g.groups + q) * P + p) * Kg + j];
          maxErr = Math.max(maxErr, Math.abs(s - ref[p]));
        }
      }
      expect(maxErr).toBeLessThan(1e-12); // the patches are copies, so the float64 sums agree exactly
    });

    it(`col2im is the adjoint of im2col (⟨U x, c⟩ = ⟨x, Uᵀ c⟩ in float64): ${label}`, () => {
      const rng = new SeededRandom(`col2im-${label}`);
      const rows = 2;
      const { outH, outW } = convOutput(g);
      const image = rows * g.channels * g.height * g.width;
      const colsN = rows * g.channels * g.kernelH * g.kernelW * outH * outW;
      const x = random(rng, image);
      const c = random(rng, colsN);
      const ux = new Float32Array(colsN);
      k.im2col(x, rows, g, ux);
      const utc = new Float32Array(image).fill(Number.NaN);
      k.col2im(c, rows, g, utc);
      let lhs = 0;
      for (let i = 0; i < colsN; i++) lhs += ux[i] * c[i];
      let rhs = 0;
      for (let i = 0; i < image; i++) rhs += x[i] * utc[i];
      expect(Math.abs(lhs - rhs)).toBeLessThan(1e-5 * Math.max(1, Math.abs(lhs)));
    });
  }

  it("refuses a window that does not fit, a short buffer and overlapping buffers, naming the argument", () => {
    const g = geometry({});
    const cols = new Float32Array(2 * 18 * 20);
    expect(() => k.im2col(new Float32Array(84), 1, geometry({ kernelH: 9 }), cols)).toThrow(/does not fit/);
    expect(() => k.im2col(new Float32Array(83), 1, g, cols)).toThrow(/im2col: x has fewer/);
    expect(() => k.col2im(new Float32Array(10), 1, g, new Float32Array(84))).toThrow(
      /col2im: cols has fewer/,
    );
    expect(() => k.im2col(new Float32Array(84), 1, geometry({ strideH: 0 }), cols)).toThrow(/g.strideH/);
    expect(() => k.im2col(new Float32Array(84), 1, geometry({ groups: 3 }), cols)).toThrow(
      /g.groups must divide/,
    );
    const buf = new Float32Array(1000);
    expect(() => k.im2col(buf.subarray(0, 84), 1, g, buf.subarray(80))).toThrow(/overlap/);
  });
});
