import { convOutput, type ConvGeometry, type TemperedSigmoid } from "./kernels.js";

/**
 * The TypeScript max pooling, tempered sigmoid and block transpose (see Kernels): the same
 * semantics as the native kernels, checked against the same float64 references.
 */
export function maxPool2dTs(
  x: Float32Array,
  rows: number,
  g: ConvGeometry,
  y: Float32Array,
  argmax: Int32Array,
): void {
  const { outH, outW } = convOutput(g);
  const W = g.width;
  const HW = g.height * W;
  const image = g.channels * HW;
  let o = 0;
  for (let n = 0; n < rows; n++) {
    const xn = n * image;
    for (let c = 0; c < g.channels; c++) {
      const base = c * HW;
      for (let oy = 0; oy < outH; oy++) {
        const ya = oy * g.strideH - g.padH;
        const y0 = Math.max(0, ya);
        const y1 = Math.min(g.height, ya + g.kernelH);
        for (let ox = 0; ox < outW; ox++, o++) {
          const xa = ox * g.strideW - g.padW;
          const x0 = Math.max(0, xa);
          const x1 = Math.min(W, xa + g.kernelW);
          let at = base + y0 * W + x0;
          let best = x[xn + at];
          for (let r = y0; r < y1; r++)
            for (let i = base + r * W + x0, end = base + r * W + x1; i < end; i++) {
              const v = x[xn + i];
              // `>` keeps the first maximum; a NaN wins, so it propagates (as in PyTorch).
              if (v > best || v !== v) {
                best = v;
                at = i;
              }
            }
          y[o] = x[xn + at];
          argmax[o] = at;
        }
      }
    }
  }
}

export function maxPool2dBackwardTs(
  dy: Float32Array,
  rows: number,
  g: ConvGeometry,
  argmax: Int32Array,
  dx: Float32Array,
): void {
  const { outH, outW } = convOutput(g);
  const image = g.channels * g.height * g.width;
  const per = g.channels * outH * outW;
  dx.fill(0, 0, rows * image);
  for (let n = 0, o = 0; n < rows; n++) {
    const at = n * image;
    for (const end = o + per; o < end; o++) dx[at + argmax[o]] += dy[o];
  }
}

export function temperedSigmoidTs(x: Float32Array, t: TemperedSigmoid, out: Float32Array): void {
  const { scale, inverseTemperature, offset } = t;
  for (let i = 0; i < x.length; i++) out[i] = scale / (1 + Math.exp(-inverseTemperature * x[i])) - offset;
}

export function temperedSigmoidBackwardTs(
  y: Float32Array,
  dy: Float32Array,
  t: TemperedSigmoid,
  out: Float32Array,
): void {
  const { scale, offset } = t;
  const c = t.inverseTemperature / scale;
  for (let i = 0; i < y.length; i++) {
    const u = y[i] + offset;
    out[i] = dy[i] * c * u * (scale - u);
  }
}

export function transposeBlocksTs(
  x: Float32Array,
  rows: number,
  a: number,
  b: number,
  out: Float32Array,
): void {
  for (let n = 0; n < rows; n++) {
    const base = n * a * b;
    for (let i = 0; i < a; i++) {
      const src = base + i * b;
      for (let j = 0, dst = base + i; j < b; j++, dst += a) out[dst] = x[src + j];
    }
  }
}
