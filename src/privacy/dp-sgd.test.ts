import { describe, expect, it } from "vitest";
import { Network } from "../model/network.js";
import { SeededRandom } from "../random.js";
import { parseContract } from "../schemas/contract.js";
import { ModelSpec, type ModelSpecInput } from "../schemas/model.js";
import { bruteForceGrad, type P } from "../../test/support/float64-reference.js";
import { TypeScriptKernels } from "../tensor/ts-kernels.js";
import type { Kernels } from "../tensor/kernels.js";
import { CLIP_EPSILON, DpSgdGradient } from "./dp-sgd.js";

const backends: [string, Kernels][] = [["typescript", new TypeScriptKernels()]];

const SPECS: Record<string, ModelSpecInput> = {
  "linear+relu+softmax": {
    arch: "t",
    input_dim: 5,
    num_classes: 3,
    loss: "softmax_cross_entropy",
    layers: [
      { type: "linear", in_features: 5, out_features: 6 },
      { type: "relu" },
      { type: "linear", in_features: 6, out_features: 3 },
    ],
  },
  "tanh+gelu+layernorm": {
    arch: "t",
    input_dim: 4,
    num_classes: 4,
    loss: "softmax_cross_entropy",
    layers: [
      { type: "linear", in_features: 4, out_features: 7 },
      { type: "layernorm", dim: 7 },
      { type: "tanh" },
      { type: "linear", in_features: 7, out_features: 5, bias: false },
      { type: "gelu" },
      { type: "linear", in_features: 5, out_features: 4 },
    ],
  },
  "binary cross-entropy": {
    arch: "t",
    input_dim: 6,
    num_classes: 2,
    loss: "binary_cross_entropy",
    layers: [
      { type: "linear", in_features: 6, out_features: 4 },
      { type: "gelu" },
      { type: "linear", in_features: 4, out_features: 1 },
    ],
  },
};

function randomBatch(rng: SeededRandom, rows: number, d: number, classes: number) {
  const x = new Float32Array(rows * d);
  for (let i = 0; i < x.length; i++) x[i] = (rng.uniform() * 2 - 1) * 2;
  const y = new Int32Array(rows);
  for (let i = 0; i < rows; i++) y[i] = Math.floor(rng.uniform() * classes);
  return { x, y };
}

/** Per-example gradients, one example at a time (no batching, no ghost norms). */
function perExampleGrads(
  net: Network,
  x: Float32Array,
  y: Int32Array,
  rows: number,
  d: number,
): Float64Array[] {
  const out: Float64Array[] = [];
  for (let i = 0; i < rows; i++) {
    const xi = x.slice(i * d, (i + 1) * d);
    const logits = net.forward(xi, 1, true);
    const { dLogits } = net.lossAndGrad(logits, y.subarray(i, i + 1), 1);
    net.backward(dLogits, 1);
    net.writeGrads(1, null);
    out.push(Float64Array.from(net.params.flatMap((p) => Array.from(p.grad))));
  }
  return out;
}

describe.each(backends)("DP-SGD gradients (%s kernels)", (_name, k) => {
  for (const [label, input] of Object.entries(SPECS)) {
    it(`per-example gradients match float64 finite differences (test/support/float64-reference.ts): ${label}`, () => {
      const spec = parseContract(ModelSpec, input, "spec");
      const rng = new SeededRandom(`fd-${label}`);
      const net = new Network(spec, k, rng);
      const rows = 5;
      const { x, y } = randomBatch(rng, rows, spec.input_dim, spec.num_classes);
      const grads = perExampleGrads(net, x, y, rows, spec.input_dim);
      const p64: P = new Map(net.params.map((p) => [p.name, Float64Array.from(p.data)]));
      for (let i = 0; i < rows; i++) {
        const flat = bruteForceGrad(
          spec,
          p64,
          Array.from(x.subarray(i * spec.input_dim, (i + 1) * spec.input_dim)),
          y[i],
        );
        for (let j = 0; j < flat.length; j++)
          expect(Math.abs(grads[i][j] - flat[j])).toBeLessThan(2e-5 * Math.max(1, Math.abs(flat[j])));
      }
    });

    it(`batched clipped sum equals brute-force per-example clipping: ${label}`, () => {
      const spec = parseContract(ModelSpec, input, "spec");
      const rng = new SeededRandom(`clip-${label}`);
      const net = new Network(spec, k, rng);
      const rows = 9;
      const { x, y } = randomBatch(rng, rows, spec.input_dim, spec.num_classes);
      const grads = perExampleGrads(net, x, y, rows, spec.input_dim);
      const norms = grads.map((g) => Math.sqrt(g.reduce((a, v) => a + v * v, 0)));
      // C between the smallest and largest norm, so some examples are clipped and some are not.
      const sorted = [...norms].sort((a, b) => a - b);
      const C = (sorted[2] + sorted[rows - 3]) / 2;
      const expected = new Float64Array(grads[0].length);
      for (let i = 0; i < rows; i++) {
        const f = Math.min(1, C / (norms[i] + CLIP_EPSILON));
        for (let j = 0; j < expected.length; j++) expected[j] += f * grads[i][j];
      }
      const dp = new DpSgdGradient(net, k, new SeededRandom(1));
      const res = dp.clippedSum(x, y, rows, C)!;
      for (let i = 0; i < rows; i++) expect(res.norms[i]).toBeCloseTo(norms[i], 5);
      const got = net.params.flatMap((p) => Array.from(p.grad));
      expect(got.length).toBe(expected.length);
      for (let j = 0; j < got.length; j++) expect(Math.abs(got[j] - expected[j])).toBeLessThan(1e-5);
    });
  }

  it("dropout: batched clipped sum equals per-example clipping under the same mask stream", () => {
    const input: ModelSpecInput = {
      arch: "t",
      input_dim: 4,
      num_classes: 3,
      loss: "softmax_cross_entropy",
      layers: [
        { type: "linear", in_features: 4, out_features: 8 },
        { type: "relu" },
        { type: "dropout", p: 0.4 },
        { type: "linear", in_features: 8, out_features: 3 },
      ],
    };
    const spec = parseContract(ModelSpec, input, "spec");
    const data = randomBatch(new SeededRandom("drop-data"), 6, 4, 3);
    // Same init and same dropout stream: masks are drawn row by row in both paths.
    const a = new Network(spec, k, new SeededRandom("drop"));
    const grads = perExampleGrads(a, data.x, data.y, 6, 4);
    const b = new Network(spec, k, new SeededRandom("drop"));
    const C = 0.3;
    new DpSgdGradient(b, k, new SeededRandom(1)).clippedSum(data.x, data.y, 6, C);
    const expected = new Float64Array(grads[0].length);
    let zeroed = 0;
    for (const g of grads) {
      const n = Math.sqrt(g.reduce((s, v) => s + v * v, 0));
      const f = Math.min(1, C / (n + CLIP_EPSILON));
      g.forEach((v, j) => (expected[j] += f * v));
      zeroed += g.filter((v) => v === 0).length;
    }
    expect(zeroed).toBeGreaterThan(0); // the mask really dropped units
    const got = b.params.flatMap((p) => Array.from(p.grad));
    for (let j = 0; j < got.length; j++) expect(Math.abs(got[j] - expected[j])).toBeLessThan(1e-5);
  });

  it("adds N(0, (σC/B)²) noise: variance, mean and kurtosis of an empty-batch step", () => {
    const spec = parseContract(
      ModelSpec,
      {
        arch: "t",
        input_dim: 200,
        num_classes: 10,
        loss: "softmax_cross_entropy",
        layers: [
          { type: "linear", in_features: 200, out_features: 100 },
          { type: "relu" },
          { type: "linear", in_features: 100, out_features: 10 },
        ],
      },
      "spec",
    );
    const net = new Network(spec, k, new SeededRandom(3));
    const dp = new DpSgdGradient(net, k, new SeededRandom("noise"));
    const sigma = 1.3;
    const C = 0.7;
    const B = 4;
    const std = (sigma * C) / B;
    let n = 0;
    let s1 = 0;
    let s2 = 0;
    let s4 = 0;
    for (let step = 0; step < 5; step++) {
      dp.compute(new Float32Array(0), new Int32Array(0), 0, {
        maxGradNorm: C,
        noiseMultiplier: sigma,
        expectedBatchSize: B,
      });
      for (const p of net.params)
        for (const v of p.grad) {
          n++;
          s1 += v;
          s2 += v * v;
          s4 += v ** 4;
        }
    }
    const variance = s2 / n;
    // n ≈ 105k draws: the variance estimate's relative sd is √(2/n) ≈ 0.44%; allow 5 sd.
    expect(Math.abs(variance / (std * std) - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
    expect(Math.abs(s1 / n)).toBeLessThan((5 * std) / Math.sqrt(n));
    expect(s4 / n / (variance * variance)).toBeGreaterThan(2.9); // Gaussian kurtosis 3
    expect(s4 / n / (variance * variance)).toBeLessThan(3.1);
  });
});
