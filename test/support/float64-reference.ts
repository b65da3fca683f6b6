// An independent float64 reference for the network's gradients: the forward pass written again
// from each layer's definition (not the engine's code), differentiated by central finite
// differences one example at a time. DP-SGD's per-example norms and clipped sums are checked
// against it (src/privacy/dp-sgd.test.ts, src/privacy/dp-sgd-cnn.test.ts).
import { hw, inputShapeOf, type LayerSpec, type ModelSpec } from "../../src/schemas/model.js";

/** Parameters by name, in the network's parameter order. */
export type P = Map<string, Float64Array>;
/** An example as a float64 array with its shape ([C, H, W], [L, E] or [D]). */
interface T64 {
  shape: number[];
  v: Float64Array;
}

function refConv(l: Extract<LayerSpec, { type: "conv2d" }>, p: P, pre: string, x: T64): T64 {
  const [C, H, W] = x.shape;
  const [kh, kw] = hw(l.kernel_size);
  const [sh, sw] = hw(l.stride);
  const [ph, pw] = hw(l.padding);
  const [dh, dw] = hw(l.dilation);
  const OH = Math.floor((H + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const OW = Math.floor((W + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  const cin = C / l.groups;
  const cout = l.out_channels / l.groups;
  const w = p.get(`${pre}.weight`)!;
  const b = p.get(`${pre}.bias`);
  const y = new Float64Array(l.out_channels * OH * OW);
  for (let o = 0; o < l.out_channels; o++) {
    const g = Math.floor(o / cout);
    for (let oy = 0; oy < OH; oy++)
      for (let ox = 0; ox < OW; ox++) {
        let s = b ? b[o] : 0;
        for (let c = 0; c < cin; c++)
          for (let ky = 0; ky < kh; ky++)
            for (let kx = 0; kx < kw; kx++) {
              const iy = oy * sh - ph + ky * dh;
              const ix = ox * sw - pw + kx * dw;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
              s += w[((o * cin + c) * kh + ky) * kw + kx] * x.v[((g * cin + c) * H + iy) * W + ix];
            }
        y[(o * OH + oy) * OW + ox] = s;
      }
  }
  return { shape: [l.out_channels, OH, OW], v: y };
}

function refPool(l: Extract<LayerSpec, { type: "maxpool2d" | "avgpool2d" }>, x: T64): T64 {
  const [C, H, W] = x.shape;
  const [kh, kw] = hw(l.kernel_size);
  const [sh, sw] = hw(l.stride ?? l.kernel_size);
  const [ph, pw] = hw(l.padding);
  const OH = Math.floor((H + 2 * ph - kh) / sh) + 1;
  const OW = Math.floor((W + 2 * pw - kw) / sw) + 1;
  const y = new Float64Array(C * OH * OW);
  for (let c = 0; c < C; c++)
    for (let oy = 0; oy < OH; oy++)
      for (let ox = 0; ox < OW; ox++) {
        const vals: number[] = [];
        for (let ky = 0; ky < kh; ky++)
          for (let kx = 0; kx < kw; kx++) {
            const iy = oy * sh - ph + ky;
            const ix = ox * sw - pw + kx;
            if (iy >= 0 && iy < H && ix >= 0 && ix < W) vals.push(x.v[(c * H + iy) * W + ix]);
          }
        const sum = vals.reduce((a, b) => a + b, 0);
        y[(c * OH + oy) * OW + ox] =
          l.type === "maxpool2d"
            ? Math.max(...vals)
            : sum / (l.count_include_pad === false ? vals.length : kh * kw);
      }
  return { shape: [C, OH, OW], v: y };
}

function refGroupNorm(l: Extract<LayerSpec, { type: "groupnorm" }>, p: P, pre: string, x: T64): T64 {
  const C = x.shape[0];
  const S = x.v.length / C;
  const per = (C / l.num_groups) * S;
  const y = new Float64Array(x.v.length);
  for (let g = 0; g < l.num_groups; g++) {
    const seg = x.v.subarray(g * per, (g + 1) * per);
    const mean = seg.reduce((a, b) => a + b, 0) / per;
    const vr = seg.reduce((a, b) => a + (b - mean) ** 2, 0) / per;
    for (let j = 0; j < per; j++) {
      const c = Math.floor((g * per + j) / S);
      const xhat = (seg[j] - mean) / Math.sqrt(vr + (l.eps ?? 1e-5));
      y[g * per + j] =
        l.affine === false ? xhat : p.get(`${pre}.weight`)![c] * xhat + p.get(`${pre}.bias`)![c];
    }
  }
  return { shape: x.shape, v: y };
}

function refLayer(l: LayerSpec, p: P, pre: string, x: T64): T64 {
  const map = (f: (v: number) => number): T64 => ({ shape: x.shape, v: x.v.map(f) });
  switch (l.type) {
    case "linear": {
      const W = p.get(`${pre}.weight`)!;
      const b = p.get(`${pre}.bias`);
      const y = new Float64Array(l.out_features);
      for (let o = 0; o < l.out_features; o++) {
        let s = b ? b[o] : 0;
        for (let j = 0; j < l.in_features; j++) s += W[o * l.in_features + j] * x.v[j];
        y[o] = s;
      }
      return { shape: [l.out_features], v: y };
    }
    case "relu":
      return map((v) => Math.max(0, v));
    case "tanh":
      return map(Math.tanh);
    case "gelu":
      return map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
    case "layernorm": {
      const g = p.get(`${pre}.weight`)!;
      const bt = p.get(`${pre}.bias`)!;
      const n = x.v.length;
      const mean = x.v.reduce((a, b) => a + b, 0) / n;
      const vr = x.v.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
      const r = 1 / Math.sqrt(vr + (l.eps ?? 1e-5));
      return { shape: x.shape, v: x.v.map((z, j) => g[j] * (z - mean) * r + bt[j]) };
    }
    case "tempered_sigmoid":
      return map((v) => l.scale / (1 + Math.exp(-l.inverse_temperature * v)) - l.offset);
    case "conv2d":
      return refConv(l, p, pre, x);
    case "maxpool2d":
    case "avgpool2d":
      return refPool(l, x);
    case "groupnorm":
      return refGroupNorm(l, p, pre, x);
    case "flatten":
      return { shape: [x.v.length], v: x.v };
    case "embedding": {
      const W = p.get(`${pre}.weight`)!;
      const E = l.embedding_dim;
      const y = new Float64Array(x.v.length * E);
      x.v.forEach((id, j) => y.set(W.subarray(id * E, (id + 1) * E), j * E));
      return { shape: [x.v.length, E], v: y };
    }
    default:
      throw new Error(`no reference for ${l.type}`);
  }
}

/** The loss of one example, from the definitions (softmax or binary cross-entropy). */
export function refLoss(spec: ModelSpec, p: P, x: number[], label: number): number {
  let h: T64 = { shape: [...inputShapeOf(spec)], v: Float64Array.from(x) };
  spec.layers.forEach((l, i) => (h = refLayer(l, p, `layers.${i}`, h)));
  if (spec.loss === "binary_cross_entropy") {
    const z = h.v[0];
    return Math.log1p(Math.exp(-z)) + (1 - label) * z; // -[y log σ(z) + (1-y) log(1-σ(z))]
  }
  const m = Math.max(...h.v);
  const lse = Math.log(h.v.reduce((a, v) => a + Math.exp(v - m), 0)) + m;
  return lse - h.v[label];
}

/** Central differences in float64 over every parameter, in parameter order. */
export function bruteForceGrad(spec: ModelSpec, p: P, x: number[], label: number): Float64Array {
  const out: number[] = [];
  const h = 1e-6;
  for (const arr of p.values())
    for (let j = 0; j < arr.length; j++) {
      const keep = arr[j];
      arr[j] = keep + h;
      const up = refLoss(spec, p, x, label);
      arr[j] = keep - h;
      const down = refLoss(spec, p, x, label);
      arr[j] = keep;
      out.push((up - down) / (2 * h));
    }
  return Float64Array.from(out);
}
