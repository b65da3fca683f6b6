// Saved CNN weights load into the equivalent torch.nn.Sequential and give the same logits.
// Runs where Debian's python3-torch (or any python3 with torch and numpy) is installed;
// otherwise skipped with the reason.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { Network } from "../../src/model/network.js";
import { parseSafetensors, serializeSafetensors } from "../../src/model/safetensors.js";
import { SeededRandom } from "../../src/random.js";
import { parseContract } from "../../src/schemas/contract.js";
import { ModelSpec, type ModelSpecInput } from "../../src/schemas/model.js";
import { TypeScriptKernels } from "../../src/tensor/ts-kernels.js";

const SCRIPT = fileURLToPath(new URL("./sequential_logits.py", import.meta.url));

/** The first python3 that imports torch and numpy, or the reason there is none. */
function findTorchPython(): { python: string } | { reason: string } {
  for (const python of ["/usr/bin/python3", "python3"]) {
    const r = spawnSync(python, ["-c", "import torch, numpy"], { encoding: "utf8", timeout: 60_000 });
    if (r.status === 0) return { python };
  }
  return { reason: "no python3 with torch and numpy (apt-get install python3-torch)" };
}

const found = findTorchPython();
const skipReason = "reason" in found ? found.reason : "";

const CNN: ModelSpecInput = {
  arch: "t",
  input_dim: 2 * 12 * 12,
  input_shape: [2, 12, 12],
  num_classes: 5,
  loss: "softmax_cross_entropy",
  layers: [
    { type: "conv2d", in_channels: 2, out_channels: 8, kernel_size: 4, stride: 2, padding: 3 },
    { type: "groupnorm", num_groups: 4, num_channels: 8 },
    { type: "tempered_sigmoid", scale: 2, inverse_temperature: 1.5, offset: 1 },
    { type: "maxpool2d", kernel_size: 2, stride: 1 },
    {
      type: "conv2d",
      in_channels: 8,
      out_channels: 6,
      kernel_size: [3, 2],
      dilation: 2,
      groups: 2,
      bias: false,
    },
    { type: "relu" },
    { type: "avgpool2d", kernel_size: 2, padding: 1, count_include_pad: false },
    { type: "flatten" },
    { type: "linear", in_features: 36, out_features: 5 },
  ],
};

const EMBEDDING: ModelSpecInput = {
  arch: "t",
  input_dim: 6,
  num_classes: 3,
  loss: "softmax_cross_entropy",
  layers: [
    { type: "embedding", num_embeddings: 7, embedding_dim: 4 },
    { type: "flatten" },
    { type: "linear", in_features: 24, out_features: 3 },
  ],
};

const dir = mkdtempSync(join(tmpdir(), "enclave-torch-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function roundTrip(
  input: ModelSpecInput,
  seed: string,
): { spec: ModelSpec; net: Network; bytes: Uint8Array } {
  const spec = parseContract(ModelSpec, input, "spec");
  const net = new Network(spec, new TypeScriptKernels(), new SeededRandom(seed));
  return { spec, net, bytes: serializeSafetensors(net.weights(), { format: "pt" }) };
}

function inputs(spec: ModelSpec, rows: number, seed: string): Float32Array {
  const rng = new SeededRandom(seed);
  const emb = spec.layers[0].type === "embedding" ? spec.layers[0].num_embeddings : 0;
  const x = new Float32Array(rows * spec.input_dim);
  for (let i = 0; i < x.length; i++) x[i] = emb ? Math.floor(rng.uniform() * emb) : 2 * rng.uniform() - 1;
  return x;
}

describe("saved CNN weights and spec", () => {
  it("load back: the spec's JSON round-trips and the weights give the same logits bit for bit", () => {
    const { spec, net, bytes } = roundTrip(CNN, "save");
    const again = parseContract(ModelSpec, JSON.parse(JSON.stringify(spec)), "spec");
    expect(again).toEqual(spec);
    const other = new Network(again, new TypeScriptKernels(), new SeededRandom("other init"));
    other.loadWeights(parseSafetensors(bytes).tensors);
    const x = inputs(spec, 4, "x");
    expect(Array.from(other.forward(x, 4, false))).toEqual(Array.from(net.forward(x, 4, false)));
    // PyTorch names and layouts: conv weight [out, in/groups, kh, kw], groupnorm weight/bias [C].
    const shapes = Object.fromEntries(net.params.map((p) => [p.name, p.shape]));
    expect(shapes["layers.0.weight"]).toEqual([8, 2, 4, 4]);
    expect(shapes["layers.1.weight"]).toEqual([8]);
    expect(shapes["layers.4.weight"]).toEqual([6, 4, 3, 2]);
    expect(shapes["layers.4.bias"]).toBeUndefined();
  });
});

describe.skipIf(!!skipReason)(`torch.nn.Sequential${skipReason ? ` (skipped: ${skipReason})` : ""}`, () => {
  for (const [label, input] of [
    ["CNN (conv, groupnorm, tempered sigmoid, pools, grouped dilated conv)", CNN],
    ["embedding", EMBEDDING],
  ] as const) {
    it(`gives the same logits from the saved safetensors file: ${label}`, () => {
      const { spec, net, bytes } = roundTrip(input, label);
      const rows = 5;
      const x = inputs(spec, rows, `x-${label}`);
      const base = join(dir, label.replace(/\W+/g, "-"));
      writeFileSync(`${base}.json`, JSON.stringify(spec));
      writeFileSync(`${base}.safetensors`, bytes);
      writeFileSync(`${base}.in.f32`, x);
      const python = (found as { python: string }).python;
      const r = spawnSync(
        python,
        [SCRIPT, `${base}.json`, `${base}.safetensors`, `${base}.in.f32`, String(rows), `${base}.out.f32`],
        {
          encoding: "utf8",
          timeout: 120_000,
        },
      );
      expect(r.status, r.stderr).toBe(0);
      const buf = readFileSync(`${base}.out.f32`);
      const torchLogits = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
      const ours = net.forward(x, rows, false);
      expect(torchLogits.length).toBe(rows * net.outputWidth);
      let maxErr = 0;
      for (let i = 0; i < torchLogits.length; i++)
        maxErr = Math.max(maxErr, Math.abs(torchLogits[i] - ours[i]));
      expect(maxErr).toBeLessThan(1e-5);
    });
  }
});
