// `enclave train` on images: the named Fashion-MNIST dataset (here a small stand-in in the IDX
// format, found through ENCLAVE_FASHION_MNIST_DIR) with the FashionCNN architecture's defaults,
// and an IDX dataset with a --model-spec file.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SeededRandom } from "../src/random.js";
import { cli } from "./support/cli.js";
import { emptyLedgerCopier } from "./support/ledger-template.js";

const root = mkdtempSync(join(tmpdir(), "enclave-cnn-train-"));
let seed: (workspace: string) => void;
beforeAll(async () => {
  seed = await emptyLedgerCopier(root);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function idx(magic: number, dims: number[], data: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(data)]);
}

/** n random h×w images with labels 0..9 (class-dependent brightness, so there is something to learn). */
function writeImages(dir: string, prefix: string, n: number, h = 28, w = 28): void {
  const rng = new SeededRandom(`${prefix}-${n}`);
  const labels = Uint8Array.from({ length: n }, (_, i) => i % 10);
  const pixels = new Uint8Array(n * h * w);
  for (let i = 0; i < pixels.length; i++)
    pixels[i] = Math.floor(rng.uniform() * 25 * (1 + labels[Math.floor(i / (h * w))]));
  writeFileSync(join(dir, `${prefix}-images-idx3-ubyte`), idx(0x803, [n, h, w], pixels));
  writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte`), idx(0x801, [n], labels));
}

function workspace(name: string): string {
  const ws = join(root, name, "ws");
  mkdirSync(ws, { recursive: true });
  seed(ws);
  return ws;
}

describe("enclave train on images", () => {
  it("--dataset fashion-mnist --model FashionCNN trains with the architecture's defaults on the official split", async () => {
    const dir = join(root, "fmnist");
    mkdirSync(dir);
    writeImages(dir, "train", 120);
    writeImages(dir, "t10k", 40);
    const before = process.env.ENCLAVE_FASHION_MNIST_DIR;
    process.env.ENCLAVE_FASHION_MNIST_DIR = dir;
    try {
      const r = await cli(
        "train",
        "--dataset",
        "fashion-mnist",
        "--model",
        "FashionCNN",
        "--target-epsilon",
        "3",
        "--seed",
        "1",
        "--json",
        "--epochs",
        "1",
        "--batch-size",
        "30",
        "--workspace",
        workspace("fmnist"),
        "--out",
        join(root, "fmnist-out"),
      );
      expect(r.code, r.err).toBe(0);
      const report = JSON.parse(r.out);
      expect(report.model).toMatchObject({ arch: "FashionCNN", parameters: 26010 });
      expect(report.dataset).toMatchObject({ train_rows: 120, test_rows: 40, features: 784, classes: 10 });
      // FashionCNN's defaults (lr 4, momentum 0.9, C 0.1) where no flag was given; delta min(1e-5, 0.1/n).
      expect(report.training).toMatchObject({ learning_rate: 4, batch_size: 30, epochs: 1 });
      expect(report.privacy).toMatchObject({ max_grad_norm: 0.1, delta: 1e-5, accounting_delta: 1e-5 });
      expect(report.privacy.epsilon).toBeLessThanOrEqual(3);
      const weights = readFileSync(join(root, "fmnist-out", "model.safetensors"));
      expect(weights.toString("latin1")).toContain('"layers.0.weight":{"dtype":"F32","shape":[16,1,8,8]');
    } finally {
      if (before === undefined) delete process.env.ENCLAVE_FASHION_MNIST_DIR;
      else process.env.ENCLAVE_FASHION_MNIST_DIR = before;
    }
  });

  it("--model-spec trains a declared CNN on an IDX dataset, and refuses a spec that does not fit the data", async () => {
    const dir = join(root, "idx");
    mkdirSync(dir);
    writeImages(dir, "scans", 60, 12, 12);
    const classes = Array.from({ length: 10 }, (_, i) => `c${i}`);
    writeFileSync(
      join(dir, "scans-images-idx3-ubyte.schema.json"),
      JSON.stringify({
        format: "idx",
        labels_file: "scans-labels-idx1-ubyte",
        image_shape: [12, 12],
        classes,
      }),
    );
    const spec = {
      arch: "TinyCNN",
      input_dim: 144,
      input_shape: [1, 12, 12],
      num_classes: 10,
      loss: "softmax_cross_entropy",
      layers: [
        { type: "conv2d", in_channels: 1, out_channels: 4, kernel_size: 3, stride: 2 },
        { type: "groupnorm", num_groups: 2, num_channels: 4 },
        { type: "tempered_sigmoid" },
        { type: "avgpool2d", kernel_size: 2 },
        { type: "flatten" },
        { type: "linear", in_features: 16, out_features: 10 },
      ],
    };
    const specFile = join(root, "tiny.json");
    writeFileSync(specFile, JSON.stringify(spec));
    const args = (file: string, name: string) => [
      "train",
      "--dataset",
      join(dir, "scans-images-idx3-ubyte"),
      "--model-spec",
      file,
      "--epochs",
      "1",
      "--target-epsilon",
      "2",
      "--seed",
      "2",
      "--json",
      "--workspace",
      workspace(name),
      "--out",
      join(root, `${name}-out`),
    ];
    const ok = await cli(...args(specFile, "spec"));
    expect(ok.code, ok.err).toBe(0);
    expect(JSON.parse(ok.out).model).toMatchObject({ arch: "TinyCNN", parameters: 4 * 9 + 4 + 8 + 170 });

    const wrong = join(root, "wrong.json");
    // Same layers on 10x10 images: a valid spec, but not for this dataset.
    writeFileSync(wrong, JSON.stringify({ ...spec, input_dim: 100, input_shape: [1, 10, 10] }));
    const bad = await cli(...args(wrong, "wrong"));
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/MODEL_SPEC_MISMATCH.*input_dim 100 != dataset features 144/);

    const bn = join(root, "bn.json");
    writeFileSync(
      bn,
      JSON.stringify({ ...spec, layers: [{ type: "batchnorm2d", num_features: 1 }, ...spec.layers] }),
    );
    const refused = await cli(...args(bn, "bn"));
    expect(refused.code).not.toBe(0);
    expect(refused.err).toMatch(/layers\.0\.type: BatchNorm is not supported.*use groupnorm/);
  });
});
