import { z } from "zod";
import { EnclaveError } from "../errors.js";
import { parseContract } from "../schemas/contract.js";
import { ModelSpec, type LayerSpec } from "../schemas/model.js";

const Activation = z.enum(["relu", "tanh", "gelu"]);

export const SimpleMlpOptions = z
  .object({
    input_dim: z.number().int().min(1),
    num_classes: z.number().int().min(2),
    hidden: z.array(z.number().int().min(1, "hidden sizes must be >= 1")).default([64]),
    activation: Activation.default("relu"),
    layernorm: z.boolean().default(false),
    dropout: z.number().min(0).lt(1).default(0),
  })
  .strict();

export const LogisticRegressionOptions = z
  .object({ input_dim: z.number().int().min(1), num_classes: z.number().int().min(2) })
  .strict();

/** An MLP: [Linear -> (LayerNorm) -> activation -> (Dropout)]* -> Linear, softmax cross-entropy. */
function simpleMlp(input: unknown): ModelSpec {
  const o = parseContract(SimpleMlpOptions, input, "SimpleMLP options");
  const layers: LayerSpec[] = [];
  let width = o.input_dim;
  for (const h of o.hidden) {
    layers.push({ type: "linear", in_features: width, out_features: h, bias: true });
    if (o.layernorm) layers.push({ type: "layernorm", dim: h, eps: 1e-5 });
    layers.push({ type: o.activation });
    if (o.dropout > 0) layers.push({ type: "dropout", p: o.dropout });
    width = h;
  }
  layers.push({ type: "linear", in_features: width, out_features: o.num_classes, bias: true });
  return parseContract(
    ModelSpec,
    {
      arch: "SimpleMLP",
      input_dim: o.input_dim,
      num_classes: o.num_classes,
      layers,
      loss: "softmax_cross_entropy",
    },
    "ModelSpec",
  );
}

/** Logistic regression: one linear layer; binary uses a single logit with binary cross-entropy. */
function logisticRegression(input: unknown): ModelSpec {
  const o = parseContract(LogisticRegressionOptions, input, "LogisticRegression options");
  const binary = o.num_classes === 2;
  return parseContract(
    ModelSpec,
    {
      arch: "LogisticRegression",
      input_dim: o.input_dim,
      num_classes: o.num_classes,
      layers: [{ type: "linear", in_features: o.input_dim, out_features: binary ? 1 : o.num_classes }],
      loss: binary ? "binary_cross_entropy" : "softmax_cross_entropy",
    },
    "ModelSpec",
  );
}

export const ImageCnnOptions = z
  .object({
    input_dim: z.number().int().min(1),
    num_classes: z.number().int().min(2),
    /** [channels, height, width]; default [1, s, s] when input_dim is a square s². */
    input_shape: z.array(z.number().int().min(1)).length(3, "must be [channels, height, width]").optional(),
  })
  .strict();

/** [channels, height, width] of the images, from input_shape or a square input_dim. */
function imageShapeOf(o: z.output<typeof ImageCnnOptions>, arch: string): number[] {
  if (o.input_shape) return o.input_shape;
  const side = Math.round(Math.sqrt(o.input_dim));
  if (side * side !== o.input_dim)
    throw new EnclaveError(
      "MODEL_OPTIONS_INVALID",
      `${arch} needs input_shape [channels, height, width]: input_dim ${o.input_dim} is not a square image`,
    );
  return [1, side, side];
}

/**
 * Opacus's MNIST example network (SampleConvNet) with the activation given: conv 16x8x8 stride 2
 * padding 3, maxpool 2/1, conv 32x4x4 stride 2, maxpool 2/1, linear -> 32, linear -> classes.
 */
function sampleConvNet(arch: string, activation: LayerSpec, input: unknown): ModelSpec {
  const o = parseContract(ImageCnnOptions, input, `${arch} options`);
  const [c, h, w] = imageShapeOf(o, arch);
  const after = (n: number, k: number, s: number, p: number) => Math.floor((n + 2 * p - k) / s) + 1;
  const side = (n: number) => after(after(after(after(n, 8, 2, 3), 2, 1, 0), 4, 2, 0), 2, 1, 0);
  const flat = 32 * side(h) * side(w);
  return parseContract(
    ModelSpec,
    {
      arch,
      input_dim: o.input_dim,
      input_shape: [c, h, w],
      num_classes: o.num_classes,
      loss: "softmax_cross_entropy",
      layers: [
        { type: "conv2d", in_channels: c, out_channels: 16, kernel_size: 8, stride: 2, padding: 3 },
        activation,
        { type: "maxpool2d", kernel_size: 2, stride: 1 },
        { type: "conv2d", in_channels: 16, out_channels: 32, kernel_size: 4, stride: 2 },
        activation,
        { type: "maxpool2d", kernel_size: 2, stride: 1 },
        { type: "flatten" },
        { type: "linear", in_features: Math.max(1, flat), out_features: 32 },
        activation,
        { type: "linear", in_features: 32, out_features: o.num_classes },
      ],
    },
    `${arch} for input shape [${c}, ${h}, ${w}]`,
  );
}

const REGISTRY: Record<string, (options: unknown) => ModelSpec> = {
  SimpleMLP: simpleMlp,
  LogisticRegression: logisticRegression,
  SampleConvNet: (o) => sampleConvNet("SampleConvNet", { type: "relu" }, o),
  // Papernot et al. (AAAI 2021): the same network with tempered sigmoids (here tanh) for DP.
  FashionCNN: (o) =>
    sampleConvNet("FashionCNN", { type: "tempered_sigmoid", scale: 2, inverse_temperature: 2, offset: 1 }, o),
};

/** Architectures that read [channels, height, width] images (they take an input_shape option). */
export const IMAGE_ARCHITECTURES: readonly string[] = ["SampleConvNet", "FashionCNN"];

/** Training hyperparameters an architecture ships with (used where the caller gives none). */
export interface TrainingDefaults {
  epochs: number;
  batchSize: number;
  learningRate: number;
  momentum: number;
  maxGradNorm: number;
}

const TRAINING_DEFAULTS: Record<string, TrainingDefaults> = {
  // Papernot et al.'s and Tramer & Boneh's end-to-end Fashion-MNIST CNN: 40 epochs of Poisson
  // batches of 2048, lr 4, momentum 0.9, C 0.1 (docs/models.md has the measured accuracy).
  FashionCNN: { epochs: 40, batchSize: 2048, learningRate: 4, momentum: 0.9, maxGradNorm: 0.1 },
};

export function trainingDefaults(arch: string): TrainingDefaults | undefined {
  return TRAINING_DEFAULTS[arch];
}

export function modelArchitectures(): string[] {
  return Object.keys(REGISTRY);
}

/**
 * The spec of a registered architecture for a dataset: its features and classes, the image shape
 * for the image architectures, and the hidden sizes and activation for SimpleMLP (default [32], relu).
 */
export function specForDataset(
  arch: string,
  dataset: { numFeatures: number; numClasses: number; exampleShape?: readonly number[] },
  mlp: { hidden?: number[]; activation?: "relu" | "tanh" | "gelu" } = {},
): ModelSpec {
  const image = IMAGE_ARCHITECTURES.includes(arch) && dataset.exampleShape;
  return buildModelSpec(arch, {
    input_dim: dataset.numFeatures,
    num_classes: dataset.numClasses,
    ...(image ? { input_shape: [...dataset.exampleShape!] } : {}),
    ...(arch === "SimpleMLP" ? { hidden: mlp.hidden ?? [32], activation: mlp.activation ?? "relu" } : {}),
  });
}

/** Build a declarative model spec from a registered architecture name and its options. */
export function buildModelSpec(arch: string, options: Record<string, unknown>): ModelSpec {
  // Own keys only: "__proto__", "constructor" or "toString" must not reach Object.prototype.
  if (typeof arch !== "string" || !Object.hasOwn(REGISTRY, arch)) {
    throw new EnclaveError(
      "UNKNOWN_MODEL_ARCH",
      `model_arch is not a known architecture; known: ${modelArchitectures().join(", ")}`,
    );
  }
  return REGISTRY[arch](options);
}
