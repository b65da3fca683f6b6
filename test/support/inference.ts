import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { loadDataset } from "../../src/data/load.js";
import { prepareDataset } from "../../src/data/split.js";
import type { CsvDatasetSchema } from "../../src/schemas/dataset.js";
import { buildModelSpec } from "../../src/model/registry.js";
import { Network } from "../../src/model/network.js";
import { SeededRandom } from "../../src/random.js";
import { kernels } from "../../src/tensor/backend.js";
import { encodeModelFile } from "../../src/model/model-file.js";
import type { ChatSummary } from "../../src/inference/client.js";
import type { InferenceError } from "../../src/inference/errors.js";

/** the bundled breast-cancer data as a model file. */
export const DATA_DIR = fileURLToPath(new URL("../../data/", import.meta.url));
export const BREAST_CANCER_CSV = `${DATA_DIR}breast-cancer-wisconsin.csv`;

/** A seeded, untrained SimpleMLP over the breast-cancer schema, with the fitted standardiser. */
export async function breastCancerModelFile(seed = 7): Promise<Uint8Array> {
  const { dataset, schema } = await loadDataset(DATA_DIR, "breast-cancer-wisconsin.csv");
  const { standardizer } = prepareDataset(dataset, { testFraction: 0.2, seed });
  const spec = buildModelSpec("SimpleMLP", { input_dim: dataset.numFeatures, num_classes: 2, hidden: [8] });
  const net = new Network(spec, kernels(), new SeededRandom(seed));
  return encodeModelFile({ weights: net.weights(), spec, schema: schema as CsvDatasetSchema, standardizer });
}

/** The first `n` data rows of the bundled CSV, with its header. */
export function breastCancerRows(n: number, options: { dropLabel?: boolean } = {}): string {
  const lines = readFileSync(BREAST_CANCER_CSV, "utf8")
    .trim()
    .split(/\r?\n/)
    .slice(0, n + 1);
  if (!options.dropLabel) return lines.join("\n") + "\n";
  return lines.map((l) => l.slice(0, l.lastIndexOf(","))).join("\n") + "\n";
}

/** The error a promise rejects with (fails the test when it resolves). */
export async function rejection(p: Promise<unknown>): Promise<InferenceError> {
  try {
    await p;
  } catch (err) {
    return err as InferenceError;
  }
  throw new Error("expected a rejection");
}

/** Every chunk of a chat stream, and the summary it returns at the end. */
export async function drainChat(
  it: AsyncGenerator<string, ChatSummary>,
): Promise<{ pieces: string[]; summary: ChatSummary }> {
  const pieces: string[] = [];
  for (let r = await it.next(); ; r = await it.next()) {
    if (r.done) return { pieces, summary: r.value };
    pieces.push(r.value);
  }
}
