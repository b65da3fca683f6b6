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

const REGISTRY: Record<string, (options: unknown) => ModelSpec> = {
  SimpleMLP: simpleMlp,
  LogisticRegression: logisticRegression,
};

export function modelArchitectures(): string[] {
  return Object.keys(REGISTRY);
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
