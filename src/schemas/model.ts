import { z } from "zod";

const dim = (what: string) => z.number().int(`${what} must be an integer`).min(1, `${what} must be >= 1`).max(1 << 20);

/** One layer of a sequential model. Models are data, never code. */
export const LayerSpec = z.discriminatedUnion("type", [
  z.object({ type: z.literal("linear"), in_features: dim("in_features"), out_features: dim("out_features"), bias: z.boolean().default(true) }).strict(),
  z.object({ type: z.literal("relu") }).strict(),
  z.object({ type: z.literal("tanh") }).strict(),
  z.object({ type: z.literal("gelu") }).strict(),
  z.object({ type: z.literal("layernorm"), dim: dim("dim"), eps: z.number().positive("must be > 0").default(1e-5) }).strict(),
  z.object({ type: z.literal("dropout"), p: z.number().min(0, "must be >= 0").lt(1, "must be < 1") }).strict(),
]);
export type LayerSpec = z.output<typeof LayerSpec>;

export const LossSpec = z.enum(["softmax_cross_entropy", "binary_cross_entropy"]);
export type LossSpec = z.infer<typeof LossSpec>;

export const ModelSpec = z
  .object({
    arch: z.string().min(1, "must be a non-empty string"),
    input_dim: dim("input_dim"),
    num_classes: z.number().int("must be an integer").min(2, "must be >= 2"),
    layers: z.array(LayerSpec).min(1, "must have at least one layer"),
    loss: LossSpec,
  })
  .strict()
  .superRefine((spec, ctx) => {
    // Shapes must chain: each layer consumes what the previous one produced.
    let width = spec.input_dim;
    spec.layers.forEach((layer, i) => {
      if (layer.type === "linear") {
        if (layer.in_features !== width) {
          ctx.addIssue({ code: "custom", path: ["layers", i, "in_features"], message: `must equal the incoming width ${width}` });
        }
        width = layer.out_features;
      } else if (layer.type === "layernorm" && layer.dim !== width) {
        ctx.addIssue({ code: "custom", path: ["layers", i, "dim"], message: `must equal the incoming width ${width}` });
      }
    });
    const outputs = spec.loss === "binary_cross_entropy" ? 1 : spec.num_classes;
    if (width !== outputs) {
      ctx.addIssue({
        code: "custom",
        path: ["layers"],
        message: `final width ${width} must be ${outputs} for ${spec.loss} with ${spec.num_classes} classes`,
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
