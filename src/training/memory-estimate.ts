import { totalmem } from "node:os";
import { EnclaveError } from "../errors.js";
import { inputShapeOf, layerShapes, type ModelSpec } from "../schemas/model.js";

/** Fraction of the machine's (or the process's constrained) memory a run may plan to use. */
const USABLE_FRACTION = 0.8;
const F32 = 4;

/** Parameters of a spec, counted from its layers (no weights allocated). */
export function specParameters(spec: ModelSpec): number {
  let n = 0;
  for (const l of spec.layers) {
    if (l.type === "linear") n += l.in_features * l.out_features + (l.bias ? l.out_features : 0);
    else if (l.type === "layernorm") n += 2 * l.dim;
    else if (l.type === "conv2d") {
      const k = typeof l.kernel_size === "number" ? l.kernel_size ** 2 : l.kernel_size[0] * l.kernel_size[1];
      n += l.out_channels * (l.in_channels / l.groups) * k + (l.bias ? l.out_channels : 0);
    } else if (l.type === "groupnorm") n += l.affine ? 2 * l.num_channels : 0;
    else if (l.type === "embedding") n += l.num_embeddings * l.embedding_dim;
  }
  return n;
}

/**
 * Bytes a DP-SGD run will hold, estimated from the spec before anything is allocated: weights,
 * gradients, momentum and noise (4 copies of the parameters plus one per worker's scratch), the
 * activations and their gradients for a Poisson batch of up to 2x the expected size, and the
 * dataset three times (parsed, standardized, split). An estimate, deliberately on the high side.
 */
export function estimateTrainingBytes(spec: ModelSpec, batchSize: number, rows: number): number {
  // Every layer's output per example (a conv's unfolded input is of the same order).
  const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
  const widths = layerShapes(inputShapeOf(spec), spec.layers).shapes.reduce(
    (a, s) => a + size(s),
    spec.input_dim,
  );
  const batch = 2 * batchSize;
  return F32 * (5 * specParameters(spec) + 3 * batch * widths + 3 * rows * (spec.input_dim + 1));
}

export function usableMemoryBytes(): number {
  const constrained = typeof process.constrainedMemory === "function" ? process.constrainedMemory() : 0;
  const limit = constrained && constrained > 0 ? Math.min(constrained, totalmem()) : totalmem();
  return USABLE_FRACTION * limit;
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;

/** What a run holds besides each site's training: per site (agent, ledger, thread) and once. */
export interface RunOverhead {
  perSite?: number;
  base?: number;
}

/**
 * Refuses (MEMORY_ESTIMATE_EXCEEDED) a run whose estimate does not fit, before it allocates
 * anything: `sites` trainings of the spec plus the run's overhead. The message carries the estimate.
 */
export function assertTrainingFits(
  spec: ModelSpec,
  batchSize: number,
  rows: number,
  sites = 1,
  overhead: RunOverhead = {},
): void {
  const need =
    sites * (estimateTrainingBytes(spec, batchSize, rows) + (overhead.perSite ?? 0)) + (overhead.base ?? 0);
  const have = usableMemoryBytes();
  if (!(need <= have)) {
    throw new EnclaveError(
      "MEMORY_ESTIMATE_EXCEEDED",
      `training would need about ${gib(need)} (${specParameters(spec)} parameters, batch ${batchSize}` +
        `${sites > 1 ? `, ${sites} sites` : ""}) but ${gib(have)} is usable here; use a smaller model, batch or fewer sites`,
    );
  }
}
