import { z } from "zod";
import { EnclaveError, ValidationError } from "../errors.js";
import type { Standardizer } from "../data/standardize.js";
import { parseContract } from "../schemas/contract.js";
import { CsvDatasetSchema } from "../schemas/dataset.js";
import { ModelSpec } from "../schemas/model.js";
import type { TensorMap } from "../tensor/tensor.js";
import { parseSafetensors, serializeSafetensors } from "./safetensors.js";

/**
 * A trained model as one self-describing safetensors file: the weights, and in `__metadata__`
 * what a predictor needs to use them on new rows (the model spec, the CSV schema the rows follow,
 * the input standardisation fitted on the train split). `enclave train` writes it; `enclave
 * predict` and `enclave serve` read it. Plain safetensors readers (PyTorch) see the weights.
 *
 * Note: the standardisation (per-feature mean and std of the train split) is an aggregate of the
 * training data that DP-SGD does not cover; it travels with the model as the model's input scaling.
 */
export const MODEL_FILE_KEYS = {
  spec: "coreason.model_spec",
  schema: "coreason.dataset_schema",
  standardizer: "coreason.standardizer",
} as const;

const StandardizerJson = z
  .object({ mean: z.array(z.number().finite()), std: z.array(z.number().positive().finite()) })
  .strict();

export interface ModelFile {
  weights: TensorMap;
  spec: ModelSpec;
  /** The CSV schema of the training rows (the rows a predictor accepts). */
  schema: CsvDatasetSchema;
  /** Input standardisation per feature slot, or null when the model takes raw features. */
  standardizer: Standardizer | null;
}

export function encodeModelFile(m: ModelFile): Uint8Array {
  const metadata: Record<string, string> = {
    format: "pt",
    [MODEL_FILE_KEYS.spec]: JSON.stringify(m.spec),
    [MODEL_FILE_KEYS.schema]: JSON.stringify({ ...m.schema, sha256: undefined }),
  };
  if (m.standardizer) {
    metadata[MODEL_FILE_KEYS.standardizer] = JSON.stringify({
      mean: Array.from(m.standardizer.mean),
      std: Array.from(m.standardizer.std),
    });
  }
  return serializeSafetensors(m.weights, metadata);
}

function metadataJson(metadata: Record<string, string>, key: string): unknown {
  const text = metadata[key];
  if (text === undefined) {
    throw new ValidationError("model file", [
      { path: `__metadata__.${key}`, rule: "is missing (train the model with `enclave train`)" },
    ]);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new ValidationError("model file", [{ path: `__metadata__.${key}`, rule: "must be JSON" }]);
  }
}

/** Parse and check a model file: the spec, the schema and the standardiser must agree with each other. */
export function decodeModelFile(bytes: Uint8Array): ModelFile {
  const { tensors, metadata } = parseSafetensors(bytes);
  const spec = parseContract(ModelSpec, metadataJson(metadata, MODEL_FILE_KEYS.spec), "model file spec");
  const schema = parseContract(
    CsvDatasetSchema,
    metadataJson(metadata, MODEL_FILE_KEYS.schema),
    "model file dataset schema",
  );
  let standardizer: Standardizer | null = null;
  if (metadata[MODEL_FILE_KEYS.standardizer] !== undefined) {
    const st = parseContract(
      StandardizerJson,
      metadataJson(metadata, MODEL_FILE_KEYS.standardizer),
      "model file standardizer",
    );
    if (st.mean.length !== spec.input_dim || st.std.length !== spec.input_dim) {
      throw new EnclaveError(
        "MODEL_FILE_INCONSISTENT",
        `model file: standardizer must have ${spec.input_dim} entries (the model's input_dim)`,
      );
    }
    standardizer = { mean: Float64Array.from(st.mean), std: Float64Array.from(st.std) };
  }
  if (schema.label.classes.length !== spec.num_classes) {
    throw new EnclaveError(
      "MODEL_FILE_INCONSISTENT",
      `model file: the schema's label has ${schema.label.classes.length} classes, the model ${spec.num_classes}`,
    );
  }
  return { weights: tensors, spec, schema, standardizer };
}
