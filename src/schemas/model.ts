import { z } from "zod";
import { windowOut } from "../tensor/kernels.js";

const dim = (what: string) => z.number().int(`${what} must be an integer`).min(1, `${what} must be >= 1`).max(1 << 20);
const nonNegative = (what: string) => z.number().int(`${what} must be an integer`).min(0, `${what} must be >= 0`).max(1 << 20);
/** An int, or [height, width] as PyTorch's Conv2d and pools take. */
const pair = (what: string) => z.union([dim(what), z.tuple([dim(what), dim(what)])]);
const pairOrZero = (what: string) => z.union([nonNegative(what), z.tuple([nonNegative(what), nonNegative(what)])]);

const BATCHNORM = /^batch_?norm/i;

/** One layer of a sequential model. Models are data, never code. */
export const LayerSpec = z.discriminatedUnion(
  "type",
  [
    z.object({ type: z.literal("linear"), in_features: dim("in_features"), out_features: dim("out_features"), bias: z.boolean().default(true) }).strict(),
    z.object({ type: z.literal("relu") }).strict(),
    z.object({ type: z.literal("tanh") }).strict(),
    z.object({ type: z.literal("gelu") }).strict(),
    /** y = scale·σ(inverse_temperature·x) − offset: bounded, so activations (and gradients) stay small under DP (Papernot et al. 2021); the defaults are tanh. */
    z
      .object({
        type: z.literal("tempered_sigmoid"),
        scale: z.number().positive("must be > 0").max(1e6).default(2),
        inverse_temperature: z.number().positive("must be > 0").max(1e6).default(2),
        offset: z.number().min(-1e6).max(1e6).default(1),
      })
      .strict(),
    z.object({ type: z.literal("layernorm"), dim: dim("dim"), eps: z.number().positive("must be > 0").default(1e-5) }).strict(),
    z.object({ type: z.literal("dropout"), p: z.number().min(0, "must be >= 0").lt(1, "must be < 1") }).strict(),
    z
      .object({
        type: z.literal("conv2d"),
        in_channels: dim("in_channels"),
        out_channels: dim("out_channels"),
        kernel_size: pair("kernel_size"),
        stride: pair("stride").default(1),
        padding: pairOrZero("padding").default(0),
        dilation: pair("dilation").default(1),
        groups: dim("groups").default(1),
        bias: z.boolean().default(true),
      })
      .strict(),
    z.object({ type: z.literal("maxpool2d"), kernel_size: pair("kernel_size"), stride: pair("stride").optional(), padding: pairOrZero("padding").default(0) }).strict(),
    z
      .object({
        type: z.literal("avgpool2d"),
        kernel_size: pair("kernel_size"),
        stride: pair("stride").optional(),
        padding: pairOrZero("padding").default(0),
        count_include_pad: z.boolean().default(true),
      })
      .strict(),
    /** Normalises each example on its own (unlike BatchNorm), so per-example gradients stay per-example. */
    z
      .object({
        type: z.literal("groupnorm"),
        num_groups: dim("num_groups"),
        num_channels: dim("num_channels"),
        eps: z.number().positive("must be > 0").default(1e-5),
        affine: z.boolean().default(true),
      })
      .strict(),
    z.object({ type: z.literal("flatten") }).strict(),
    /** Token or category ids (integers in [0, num_embeddings)) to vectors; only as the first layer. */
    z.object({ type: z.literal("embedding"), num_embeddings: dim("num_embeddings"), embedding_dim: dim("embedding_dim") }).strict(),
  ],
  {
    error: (issue) => {
      const t = issue.input && typeof issue.input === "object" ? (issue.input as { type?: unknown }).type : undefined;
      if (issue.code === "invalid_union" && typeof t === "string" && BATCHNORM.test(t))
        return "BatchNorm is not supported: it mixes the examples of a batch, so per-example gradients (and with them DP-SGD's clipping) are undefined; use groupnorm (num_groups, num_channels) instead";
      return undefined;
    },
  },
);
export type LayerSpec = z.output<typeof LayerSpec>;

export const LossSpec = z.enum(["softmax_cross_entropy", "binary_cross_entropy"]);
export type LossSpec = z.infer<typeof LossSpec>;

/** The shape of one example between layers: [features], [length, features] or [channels, height, width]. */
export type ExampleShape = readonly number[];

export interface ShapeIssue {
  path: (string | number)[];
  message: string;
}

/** [h, w] from an int or a pair. */
export function hw(v: number | readonly [number, number]): [number, number] {
  return typeof v === "number" ? [v, v] : [v[0], v[1]];
}

const AXES = ["height", "width"] as const;

function windowShape(
  layer: { kernel_size: number | [number, number]; padding: number | [number, number] },
  stride: number | [number, number],
  dilation: number | [number, number],
  shape: ExampleShape,
  i: number,
  issues: ShapeIssue[],
): [number, number] | null {
  const k = hw(layer.kernel_size);
  const s = hw(stride);
  const p = hw(layer.padding);
  const d = hw(dilation);
  const out: [number, number] = [0, 0];
  for (const a of [0, 1]) {
    out[a] = windowOut(shape[a + 1], k[a], s[a], p[a], d[a]);
    if (out[a] < 1) {
      issues.push({
        path: ["layers", i, "kernel_size"],
        message: `output ${AXES[a]} would be ${out[a]}: input ${AXES[a]} ${shape[a + 1]} is smaller than the (dilated) kernel ${d[a] * (k[a] - 1) + 1} after padding ${p[a]}`,
      });
      return null;
    }
  }
  return out;
}

/**
 * The example shape after each layer (index i: the output of layer i), or the issues that stop
 * the chain. Each issue names the layer's field and the dimension that does not fit.
 */
export function layerShapes(
  inputShape: ExampleShape,
  layers: readonly LayerSpec[],
): { shapes: ExampleShape[]; issues: ShapeIssue[] } {
  const shapes: ExampleShape[] = [];
  const issues: ShapeIssue[] = [];
  let shape: ExampleShape = inputShape;
  const fail = (i: number, field: string | null, message: string) => {
    issues.push({ path: field ? ["layers", i, field] : ["layers", i], message });
  };
  for (let i = 0; i < layers.length; i++) {
    const l = layers[i];
    const needs = (rank: number, what: string): boolean => {
      if (shape.length === rank) return true;
      fail(i, null, `${l.type} needs ${what} input, got shape [${shape.join(", ")}]${rank === 1 ? "; add a flatten layer before it" : ""}`);
      return false;
    };
    let next: ExampleShape | null = shape;
    switch (l.type) {
      case "linear":
        if (!needs(1, "a flat")) next = null;
        else if (l.in_features !== shape[0]) {
          fail(i, "in_features", `must equal the incoming width ${shape[0]}`);
          next = null;
        } else next = [l.out_features];
        break;
      case "layernorm":
        if (!needs(1, "a flat")) next = null;
        else if (l.dim !== shape[0]) {
          fail(i, "dim", `must equal the incoming width ${shape[0]}`);
          next = null;
        }
        break;
      case "conv2d": {
        next = null;
        if (!needs(3, "a [channels, height, width]")) break;
        if (l.in_channels !== shape[0]) fail(i, "in_channels", `must equal the incoming channels ${shape[0]}`);
        else if (l.in_channels % l.groups !== 0) fail(i, "groups", `must divide in_channels ${l.in_channels}`);
        else if (l.out_channels % l.groups !== 0) fail(i, "groups", `must divide out_channels ${l.out_channels}`);
        else {
          const o = windowShape(l, l.stride, l.dilation, shape, i, issues);
          if (o) next = [l.out_channels, o[0], o[1]];
        }
        break;
      }
      case "maxpool2d":
      case "avgpool2d": {
        next = null;
        if (!needs(3, "a [channels, height, width]")) break;
        const k = hw(l.kernel_size);
        const p = hw(l.padding);
        if (2 * p[0] > k[0] || 2 * p[1] > k[1]) {
          fail(i, "padding", "must be at most half the kernel size in each dimension");
          break;
        }
        const o = windowShape(l, l.stride ?? l.kernel_size, 1, shape, i, issues);
        if (o) next = [shape[0], o[0], o[1]];
        break;
      }
      case "groupnorm":
        if (shape.length === 2) {
          fail(i, null, `groupnorm needs a [channels] or [channels, height, width] input, got shape [${shape.join(", ")}]`);
          next = null;
        } else if (l.num_channels !== shape[0]) {
          fail(i, "num_channels", `must equal the incoming channels ${shape[0]}`);
          next = null;
        } else if (l.num_channels % l.num_groups !== 0) {
          fail(i, "num_groups", `must divide num_channels ${l.num_channels}`);
          next = null;
        }
        break;
      case "flatten":
        next = [shape.reduce((a, b) => a * b, 1)];
        break;
      case "embedding":
        if (i !== 0) {
          fail(i, null, "embedding must be the first layer (its input is token ids)");
          next = null;
        } else if (needs(1, "a flat [length] token-id")) next = [shape[0], l.embedding_dim];
        else next = null;
        break;
      default:
        break;
    }
    if (!next) return { shapes, issues };
    shape = next;
    shapes.push(shape);
  }
  return { shapes, issues };
}

/** The example shape a spec reads: input_shape when given, else [input_dim]. */
export function inputShapeOf(spec: { input_dim: number; input_shape?: readonly number[] | undefined }): ExampleShape {
  return spec.input_shape ?? [spec.input_dim];
}

export const ModelSpec = z
  .object({
    arch: z.string().min(1, "must be a non-empty string"),
    input_dim: dim("input_dim"),
    /** Per-example shape of the input rows ([channels, height, width] for images, row-major); default [input_dim]. */
    input_shape: z.array(dim("input_shape entries")).min(1, "must have 1 to 3 dimensions").max(3, "must have 1 to 3 dimensions").optional(),
    num_classes: z.number().int("must be an integer").min(2, "must be >= 2"),
    layers: z.array(LayerSpec).min(1, "must have at least one layer"),
    loss: LossSpec,
  })
  .strict()
  .superRefine((spec, ctx) => {
    if (spec.input_shape && spec.input_shape.reduce((a, b) => a * b, 1) !== spec.input_dim) {
      ctx.addIssue({ code: "custom", path: ["input_shape"], message: `its product must equal input_dim ${spec.input_dim}` });
      return;
    }
    // Shapes must chain: each layer consumes what the previous one produced.
    const { shapes, issues } = layerShapes(inputShapeOf(spec), spec.layers);
    for (const issue of issues) ctx.addIssue({ code: "custom", path: issue.path, message: issue.message });
    if (issues.length > 0) return;
    const last = shapes[shapes.length - 1];
    const outputs = spec.loss === "binary_cross_entropy" ? 1 : spec.num_classes;
    if (last.length !== 1 || last[0] !== outputs) {
      ctx.addIssue({
        code: "custom",
        path: ["layers"],
        message: `final ${last.length === 1 ? "width" : "shape"} ${last.join("x")} must be ${outputs} for ${spec.loss} with ${spec.num_classes} classes`,
      });
    }
    if (spec.loss === "binary_cross_entropy" && spec.num_classes !== 2) {
      ctx.addIssue({ code: "custom", path: ["num_classes"], message: "must be 2 for binary_cross_entropy" });
    }
  })
  .meta({
    id: "ModelSpec",
    description:
      "A declarative sequential model: layers and loss. Checked by the TypeScript validator only (JSON Schema cannot say it): the layer widths chain (each linear layer's in_features and each layernorm's dim equal the width coming in, starting at input_dim) and the last width is num_classes (1 for binary_cross_entropy).",
    // The superRefine's class-count rule, as JSON Schema: binary_cross_entropy means 2 classes.
    if: { properties: { loss: { const: "binary_cross_entropy" } }, required: ["loss"] },
    then: { properties: { num_classes: { const: 2 } } },
  });
export type ModelSpec = z.output<typeof ModelSpec>;
export type ModelSpecInput = z.input<typeof ModelSpec>;
