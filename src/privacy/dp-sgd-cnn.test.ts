// Image and token layers under DP-SGD, checked against the independent float64 reference in
// test/support/float64-reference.ts (the forward pass written again from the layer definitions,
// differentiated by central finite differences one example at a time). The engine's batched per-example norms (ghost and explicit)
// and clipped sums must match those brute-force gradients.
import { describe, expect, it } from "vitest";
import { Conv2dLayer, type NormMethod } from "../model/conv2d.js";
import { Network } from "../model/network.js";
import { SeededRandom } from "../random.js";
import { parseContract } from "../schemas/contract.js";
import { ModelSpec, type ModelSpecInput } from "../schemas/model.js";
import { bruteForceGrad, type P } from "../../test/support/float64-reference.js";
import type { Kernels } from "../tensor/kernels.js";
import { NativeKernels, nativeStatus } from "../tensor/native-kernels.js";
import { TypeScriptKernels } from "../tensor/ts-kernels.js";
import { CLIP_EPSILON, DpSgdGradient } from "./dp-sgd.js";

const native = nativeStatus().available ? NativeKernels.create(undefined, 1) : null;
const backends: [string, Kernels][] = [["typescript", new TypeScriptKernels()]];
if (native) backends.push([native.name, native]);

// ---- the configurations ----
const image = (
  shape: [number, number, number],
  classes: number,
  layers: ModelSpecInput["layers"],
): ModelSpecInput => ({
  arch: "t",
  input_dim: shape[0] * shape[1] * shape[2],
  input_shape: shape,
  num_classes: classes,
  loss: "softmax_cross_entropy",
  layers,
});

const SPECS: Record<string, ModelSpecInput> = {
  "conv 3x3 + relu + linear": image([2, 6, 6], 3, [
    { type: "conv2d", in_channels: 2, out_channels: 3, kernel_size: 3 },
    { type: "relu" },
    { type: "flatten" },
    { type: "linear", in_features: 48, out_features: 3 },
  ]),
  "conv stride 2 padding 1 + maxpool 2/1 + tanh": image([2, 7, 7], 3, [
    { type: "conv2d", in_channels: 2, out_channels: 4, kernel_size: 3, stride: 2, padding: 1 },
    { type: "maxpool2d", kernel_size: 2, stride: 1 },
    { type: "tanh" },
    { type: "flatten" },
    { type: "linear", in_features: 36, out_features: 3 },
  ]),
  "conv dilation 2, non-square kernel, mixed stride + avgpool": image([1, 9, 8], 2, [
    {
      type: "conv2d",
      in_channels: 1,
      out_channels: 3,
      kernel_size: [3, 2],
      stride: [1, 2],
      padding: [2, 1],
      dilation: 2,
      bias: false,
    },
    { type: "avgpool2d", kernel_size: 2 },
    { type: "flatten" },
    { type: "linear", in_features: 24, out_features: 2 },
  ]),
  "grouped conv + groupnorm + tempered sigmoid + padded avgpool (count_include_pad false)": image(
    [4, 5, 5],
    3,
    [
      { type: "conv2d", in_channels: 4, out_channels: 6, kernel_size: 2, groups: 2 },
      { type: "groupnorm", num_groups: 3, num_channels: 6 },
      { type: "tempered_sigmoid", scale: 2, inverse_temperature: 1.5, offset: 1 },
      { type: "avgpool2d", kernel_size: 3, stride: 2, padding: 1, count_include_pad: false },
      { type: "flatten" },
      { type: "linear", in_features: 24, out_features: 3 },
    ],
  ),
  "depthwise conv (groups = channels) + padded maxpool + groupnorm without affine": image([3, 6, 6], 2, [
    { type: "conv2d", in_channels: 3, out_channels: 6, kernel_size: 3, padding: 1, groups: 3 },
    { type: "maxpool2d", kernel_size: 3, stride: 2, padding: 1 },
    { type: "groupnorm", num_groups: 2, num_channels: 6, affine: false },
    { type: "flatten" },
    { type: "linear", in_features: 54, out_features: 2 },
  ]),
  "Opacus SampleConvNet shape, scaled down": image([1, 14, 14], 4, [
    { type: "conv2d", in_channels: 1, out_channels: 4, kernel_size: 8, stride: 2, padding: 3 },
    { type: "relu" },
    { type: "maxpool2d", kernel_size: 2, stride: 1 },
    { type: "conv2d", in_channels: 4, out_channels: 5, kernel_size: 4, stride: 2 },
    { type: "relu" },
    { type: "maxpool2d", kernel_size: 2, stride: 1 },
    { type: "flatten" },
    { type: "linear", in_features: 5, out_features: 6 },
    { type: "relu" },
    { type: "linear", in_features: 6, out_features: 4 },
  ]),
  "linear + groupnorm on flat features": {
    arch: "t",
    input_dim: 5,
    num_classes: 3,
    loss: "softmax_cross_entropy",
    layers: [
      { type: "linear", in_features: 5, out_features: 6 },
      { type: "groupnorm", num_groups: 2, num_channels: 6 },
      { type: "tempered_sigmoid" },
      { type: "linear", in_features: 6, out_features: 3 },
    ],
  },
  "embedding (repeated tokens) + flatten + linear": {
    arch: "t",
    input_dim: 5,
    num_classes: 3,
    loss: "softmax_cross_entropy",
    layers: [
      { type: "embedding", num_embeddings: 4, embedding_dim: 3 },
      { type: "flatten" },
      { type: "linear", in_features: 15, out_features: 3 },
    ],
  },
};

function batch(spec: ModelSpec, rng: SeededRandom, rows: number) {
  const d = spec.input_dim;
  const x = new Float32Array(rows * d);
  const emb = spec.layers[0].type === "embedding" ? spec.layers[0].num_embeddings : 0;
  // Few distinct ids, so tokens repeat within an example (the case a naive norm gets wrong).
  for (let i = 0; i < x.length; i++) x[i] = emb ? Math.floor(rng.uniform() * emb) : 2 * rng.uniform() - 1;
  const y = new Int32Array(rows);
  for (let i = 0; i < rows; i++) y[i] = Math.floor(rng.uniform() * spec.num_classes);
  return { x, y };
}

function setNormMethod(net: Network, m: NormMethod): void {
  for (const l of net.layers) if (l instanceof Conv2dLayer) l.normMethod = m;
}

function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let e = 0;
  for (let j = 0; j < want.length; j++)
    e = Math.max(e, Math.abs(got[j] - want[j]) / Math.max(1, Math.abs(want[j])));
  return e;
}

const METHODS: NormMethod[] = ["ghost", "explicit", "auto"];

describe.each(backends)("image and token layers under DP-SGD (%s kernels)", (_name, k) => {
  for (const [label, input] of Object.entries(SPECS)) {
    const spec = parseContract(ModelSpec, input, "spec");
    it(`per-example gradients, norms (${METHODS.join(", ")}) and the clipped sum match float64 brute force to 1e-5: ${label}`, () => {
      const rng = new SeededRandom(`cnn-${label}`);
      const net = new Network(spec, k, rng);
      const rows = 5;
      const { x, y } = batch(spec, rng, rows);
      const p64: P = new Map(net.params.map((p) => [p.name, Float64Array.from(p.data)]));
      const d = spec.input_dim;
      const brute = Array.from({ length: rows }, (_, i) =>
        bruteForceGrad(spec, p64, Array.from(x.subarray(i * d, (i + 1) * d)), y[i]),
      );
      const norms = brute.map((g) => Math.sqrt(g.reduce((a, v) => a + v * v, 0)));
      const sorted = [...norms].sort((a, b) => a - b);
      const C = (sorted[1] + sorted[3]) / 2; // some examples clipped, some not
      const expected = new Float64Array(brute[0].length);
      brute.forEach((g, i) => {
        const f = Math.min(1, C / (norms[i] + CLIP_EPSILON));
        g.forEach((v, j) => (expected[j] += f * v));
      });
      for (const m of METHODS) {
        setNormMethod(net, m);
        const res = new DpSgdGradient(net, k, new SeededRandom(1)).clippedSum(x, y, rows, C)!;
        expect(relErr(res.norms, norms), `norms, ${m}`).toBeLessThan(1e-5);
        const got = net.params.flatMap((p) => Array.from(p.grad));
        expect(got.length).toBe(expected.length);
        expect(relErr(got, expected), `clipped sum, ${m}`).toBeLessThan(1e-5);
      }
      // One example at a time, unclipped: the per-example gradient itself.
      for (let i = 0; i < rows; i++) {
        const one = new DpSgdGradient(net, k, new SeededRandom(1));
        one.clippedSum(x.subarray(i * d, (i + 1) * d), y.subarray(i, i + 1), 1, 1e9);
        expect(
          relErr(
            net.params.flatMap((p) => Array.from(p.grad)),
            brute[i],
          ),
        ).toBeLessThan(1e-5);
      }
    });
  }
});
