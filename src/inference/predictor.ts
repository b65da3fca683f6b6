import { parseCsvDataset } from "../data/csv-loader.js";
import { applyStandardizer } from "../data/standardize.js";
import { decodeModelFile, type ModelFile } from "../model/model-file.js";
import { Network } from "../model/network.js";
import { weightsHash } from "../model/safetensors.js";
import { CryptoRandom } from "../random.js";
import { readRegularFile } from "../storage/regular-file.js";
import { kernels } from "../tensor/backend.js";

/** One row's prediction: the class name and the probability of every class, in class order. */
export interface Prediction {
  label: string;
  probabilities: number[];
}

/** The largest model file `load` reads (the weights are held in memory). */
export const MAX_MODEL_FILE_BYTES = 512 * 1024 * 1024;

/**
 * A trained model ready to answer: parses rows in the training dataset's CSV schema (the label
 * column may be present and is then ignored), scales them as training did, and returns class
 * probabilities. The same object serves `enclave predict` and the enclave's PREDICT command, so
 * the two agree by construction; the end-to-end tests check that they do.
 */
export class Predictor {
  private readonly net: Network;
  /** SHA-256 of the weights (the hash the audit ledger records for a model). */
  readonly modelSha256: string;

  constructor(readonly model: ModelFile) {
    this.net = new Network(model.spec, kernels(), new CryptoRandom());
    this.net.loadWeights(model.weights);
    this.modelSha256 = weightsHash(model.weights);
  }

  static async load(path: string): Promise<Predictor> {
    const bytes = await readRegularFile(path, "model file", MAX_MODEL_FILE_BYTES, "MODEL_FILE_UNREADABLE");
    return new Predictor(decodeModelFile(bytes));
  }

  get classes(): readonly string[] {
    return this.model.schema.label.classes;
  }

  /** Predict every row of a CSV text; DatasetError (row, column and rule, no values) on bad rows. */
  async predictCsv(text: Uint8Array, what = "input rows"): Promise<Prediction[]> {
    const ds = await parseCsvDataset(
      Buffer.from(text.buffer, text.byteOffset, text.byteLength),
      this.model.schema,
      what,
      {
        label: "ignored",
      },
    );
    const x = this.model.standardizer ? applyStandardizer(ds, this.model.standardizer).features : ds.features;
    const logits = this.net.forward(x, ds.rows, false);
    const width = this.net.outputWidth;
    const out: Prediction[] = [];
    for (let r = 0; r < ds.rows; r++) {
      const probabilities =
        width === 1 ? sigmoidPair(logits[r]) : softmax(logits.subarray(r * width, (r + 1) * width));
      let best = 0;
      for (let j = 1; j < probabilities.length; j++) if (probabilities[j] > probabilities[best]) best = j;
      out.push({ label: this.classes[best], probabilities });
    }
    return out;
  }
}

function softmax(z: Float32Array): number[] {
  let max = -Infinity;
  for (const v of z) max = Math.max(max, v);
  const e = Array.from(z, (v) => Math.exp(v - max));
  const sum = e.reduce((s, v) => s + v, 0);
  return e.map((v) => v / sum);
}

/** A single binary logit z: [P(class 0), P(class 1)] = [1 - σ(z), σ(z)]. */
function sigmoidPair(z: number): number[] {
  const p = z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
  return [1 - p, p];
}
