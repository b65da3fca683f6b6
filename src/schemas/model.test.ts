import { describe, expect, it } from "vitest";
import { ValidationError } from "../errors.js";
import { parseContract } from "./contract.js";
import { layerShapes, ModelSpec, type ModelSpecInput } from "./model.js";

function issues(input: unknown): string[] {
  try {
    parseContract(ModelSpec, input, "ModelSpec");
  } catch (e) {
    if (e instanceof ValidationError) return e.issues.map((i) => `${i.path}: ${i.rule}`);
    throw e;
  }
  return [];
}

const cnn = (layers: unknown[], shape = [1, 28, 28]): ModelSpecInput =>
  ({
    arch: "t",
    input_dim: shape.reduce((a, b) => a * b, 1),
    input_shape: shape,
    num_classes: 10,
    loss: "softmax_cross_entropy",
    layers,
  }) as ModelSpecInput;

describe("ModelSpec layers and shapes", () => {
  it("chains Opacus's SampleConvNet to [10] through conv, pool and flatten shapes", () => {
    const spec = parseContract(
      ModelSpec,
      cnn([
        { type: "conv2d", in_channels: 1, out_channels: 16, kernel_size: 8, stride: 2, padding: 3 },
        { type: "relu" },
        { type: "maxpool2d", kernel_size: 2, stride: 1 },
        { type: "conv2d", in_channels: 16, out_channels: 32, kernel_size: 4, stride: 2 },
        { type: "relu" },
        { type: "maxpool2d", kernel_size: 2, stride: 1 },
        { type: "flatten" },
        { type: "linear", in_features: 512, out_features: 32 },
        { type: "relu" },
        { type: "linear", in_features: 32, out_features: 10 },
      ]),
      "spec",
    );
    const { shapes, issues: problems } = layerShapes([1, 28, 28], spec.layers);
    expect(problems).toEqual([]);
    expect(shapes.slice(0, 7)).toEqual([
      [16, 14, 14],
      [16, 14, 14],
      [16, 13, 13],
      [32, 5, 5],
      [32, 5, 5],
      [32, 4, 4],
      [512],
    ]);
  });

  it("refuses BatchNorm in any spelling with a message that suggests GroupNorm", () => {
    for (const type of ["batchnorm", "batchnorm2d", "BatchNorm1d", "batch_norm"]) {
      const found = issues(cnn([{ type, num_features: 1 }, { type: "flatten" }]));
      expect(found).toHaveLength(1);
      expect(found[0]).toMatch(/^layers\.0\.type: BatchNorm is not supported.*per-example.*use groupnorm/);
    }
    expect(issues(cnn([{ type: "conv3d" }]))[0]).toMatch(/Invalid discriminator value/);
  });

  it("names the layer and the dimension when shapes do not chain", () => {
    const conv = { type: "conv2d", in_channels: 1, out_channels: 4, kernel_size: 3 };
    expect(issues(cnn([{ ...conv, in_channels: 3 }]))).toEqual([
      "layers.0.in_channels: must equal the incoming channels 1",
    ]);
    expect(issues(cnn([{ ...conv, kernel_size: [3, 30] }]))).toEqual([
      "layers.0.kernel_size: output width would be -1: input width 28 is smaller than the (dilated) kernel 30 after padding 0",
    ]);
    expect(issues(cnn([conv, { type: "linear", in_features: 2704, out_features: 10 }]))).toEqual([
      "layers.1: linear needs a flat input, got shape [4, 26, 26]; add a flatten layer before it",
    ]);
    expect(issues(cnn([{ ...conv, in_channels: 2, out_channels: 3, groups: 2 }], [2, 8, 8]))).toEqual([
      "layers.0.groups: must divide out_channels 3",
    ]);
    expect(issues(cnn([conv, { type: "groupnorm", num_groups: 3, num_channels: 4 }]))).toEqual([
      "layers.1.num_groups: must divide num_channels 4",
    ]);
    expect(issues(cnn([{ type: "maxpool2d", kernel_size: 2, padding: 2 }]))).toEqual([
      "layers.0.padding: must be at most half the kernel size in each dimension",
    ]);
    expect(issues(cnn([{ type: "flatten" }, { type: "embedding", num_embeddings: 5, embedding_dim: 2 }]))).toEqual([
      "layers.1: embedding must be the first layer (its input is token ids)",
    ]);
    expect(issues(cnn([conv]))).toEqual(["layers: final shape 4x26x26 must be 10 for softmax_cross_entropy with 10 classes"]);
    expect(issues(cnn([conv, { type: "flatten" }]))).toEqual([
      "layers: final width 2704 must be 10 for softmax_cross_entropy with 10 classes",
    ]);
    expect(issues({ ...cnn([{ type: "flatten" }]), input_shape: [1, 28, 27] })).toEqual([
      "input_shape: its product must equal input_dim 784",
    ]);
  });
});
