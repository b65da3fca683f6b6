import { applyStandardizer, fitStandardizer, loadDataset } from "../data/index.js";
import { datasetTaskInputs } from "../runtime/task-inputs.js";
import type { SentryExamples } from "./executor.js";

/**
 * Loads a dataset through the Data Sentry and scales it with the schema's declared statistics
 * (or, without them, statistics of the local rows, which never leave the agent); IDX images are
 * used as loaded (as are image folders). `files` are what an isolated round's guest is given.
 */
export async function loadTrainingExamples(
  dataRoot: string,
  datasetId: string,
): Promise<SentryExamples & { identity: string }> {
  const loaded = await loadDataset(dataRoot, datasetId);
  const { dataset, schema, source } = loaded;
  const files = datasetTaskInputs(dataRoot, loaded);
  // Images train on pixels in [0, 1], as `enclave train` does: no per-pixel statistics.
  if (schema.format !== "csv") return { ...dataset, identity: source.identity, files };
  const declared = schema.standardization;
  const st = declared
    ? { mean: Float64Array.from(declared.mean), std: Float64Array.from(declared.std) }
    : fitStandardizer(dataset);
  return { ...applyStandardizer(dataset, st), identity: source.identity, files };
}
