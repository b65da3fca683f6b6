import { mkdirSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import {
  applyStandardizer,
  datasetToIdx,
  dirichletPartition,
  fitStandardizer,
  iidPartition,
  loadDataset,
  loadFashionMnistSplits,
  partitionDataset,
  schemaIdsFor,
  stratifiedSplit,
  subsetDataset,
  type Dataset,
  type Standardizer,
} from "../data/index.js";
import type { LocalTrainingPlan } from "../federation/task.js";
import { Network } from "../model/network.js";
import type { RandomSource } from "../random.js";
import type { CsvDatasetSchema, DatasetSchema } from "../schemas/dataset.js";
import type { ModelSpec } from "../schemas/model.js";
import { kernels } from "../tensor/backend.js";
import { SgdOptimizer } from "../training/optimizer.js";
import { evaluate, train } from "../training/trainer.js";

/**
 * A federation's data on one machine: the rows the sites split between them, the coordinator's
 * held-out test set, and how one site's shard is written to its data root (CSV with the
 * federation's declared scaling, or IDX images as they came).
 */
export interface FederationData {
  /** The whole dataset as loaded (its shape and classes define the model). */
  dataset: Dataset;
  /** Training rows in the units the sites train in (CSV: before scaling; images: pixels in [0, 1]). */
  train: Dataset;
  /** The coordinator's test set, scaled as the sites scale their rows. */
  test: Dataset;
  /** The scaling every site declares (CSV), or null (images train on pixels in [0, 1]). */
  scaling: Standardizer | null;
  writeShard(dir: string, datasetId: string, shard: Dataset): void;
  /**
   * The held-out test set as a file a coordinator reads with `--eval-data` (CSV with the
   * federation's declared scaling, or IDX images): scored there exactly as `test` is here.
   */
  writeTest(dir: string, datasetId: string): void;
}

export type SplitSpec = { kind: "iid" } | { kind: "dirichlet"; alpha: number };

/** The sites' training rows: one shard per client, IID or label-skewed (Dirichlet). */
export function shardTrainingData(
  train: Dataset,
  clients: number,
  split: SplitSpec,
  rng: RandomSource,
): Dataset[] {
  const shards =
    split.kind === "iid"
      ? iidPartition(train.rows, clients, rng)
      : dirichletPartition(
          train.labels,
          train.numClasses,
          clients,
          { alpha: split.alpha, minPerClient: Math.min(10, Math.floor(train.rows / clients / 2)) },
          rng,
        );
  return partitionDataset(train, shards);
}

/**
 * The non-private, centralised baseline: the same model and optimiser trained on all the sites'
 * rows together for as many passes as the federation made, scored on the same test set.
 */
export async function centralisedBaseline(
  data: FederationData,
  model: ModelSpec,
  o: { rounds: number; plan: LocalTrainingPlan; init: RandomSource; sampling: RandomSource },
): Promise<{ accuracy: number; loss: number }> {
  const k = kernels();
  const net = new Network(model, k, o.init);
  await train(net, k, data.scaling ? applyStandardizer(data.train, data.scaling) : data.train, {
    epochs: Math.max(1, o.rounds) * o.plan.epochs,
    batchSize: o.plan.batchSize,
    optimizer: new SgdOptimizer(k, o.plan.learningRate, o.plan.momentum),
    sampling: o.sampling,
  });
  return evaluate(net, data.test);
}

/** Datasets `simulate --dataset` takes by name: Fashion-MNIST's official train split is shared out, its test split held out. */
export const NAMED_FEDERATION_DATASETS: readonly string[] = ["fashion-mnist"];

export async function loadFederationData(
  datasetFile: string,
  testFraction: number,
  rng: RandomSource,
): Promise<FederationData> {
  if (datasetFile === "fashion-mnist") {
    const { train, test } = await loadFashionMnistSplits();
    return imageData(train.dataset, train.dataset, test.dataset, train.schema);
  }
  const { dataset, schema } = await loadDataset(dirname(datasetFile), basename(datasetFile));
  const split = stratifiedSplit(dataset.labels, dataset.numClasses, testFraction, rng);
  const train = subsetDataset(dataset, split.train);
  const test = subsetDataset(dataset, split.test);
  if (schema.format !== "csv") return imageData(dataset, train, test, schema);
  const scaling = schema.standardization
    ? {
        mean: Float64Array.from(schema.standardization.mean),
        std: Float64Array.from(schema.standardization.std),
      }
    : fitStandardizer(train);
  return {
    dataset,
    train,
    test: applyStandardizer(test, scaling),
    scaling,
    writeShard: (dir, datasetId, shard) => writeCsvShard(dir, datasetId, shard, schema, scaling),
    writeTest: (dir, datasetId) => writeCsvShard(dir, datasetId, test, schema, scaling),
  };
}

function imageData(dataset: Dataset, train: Dataset, test: Dataset, schema: DatasetSchema): FederationData {
  if (schema.format === "csv") throw new TypeError("image data needs an image schema");
  return {
    dataset,
    train,
    test,
    scaling: null,
    writeShard: (dir, datasetId, shard) => writeIdxShard(dir, datasetId, shard, schema.classes),
    writeTest: (dir, datasetId) => writeIdxShard(dir, datasetId, test, schema.classes),
  };
}

/** A site's images as IDX: `<id>` (images), `<id>.labels` and `<id>.schema.json` naming them. */
function writeIdxShard(dir: string, datasetId: string, shard: Dataset, classes: readonly string[]): void {
  mkdirSync(dirname(join(dir, datasetId)), { recursive: true });
  const { images, labels } = datasetToIdx(shard);
  const labelsFile = `${datasetId.split("/").pop()!}.labels`;
  writeFileSync(join(dir, datasetId), images);
  writeFileSync(join(dir, dirname(datasetId), labelsFile), labels);
  const [, h, w] = shard.exampleShape!;
  const schema = {
    format: "idx",
    description: `simulation shard of ${datasetId}`,
    labels_file: labelsFile,
    image_shape: [h, w],
    classes: [...classes],
  };
  writeFileSync(join(dir, schemaIdsFor(datasetId)[0]), JSON.stringify(schema, null, 2));
}

/**
 * Column names of a shard's feature slots. A category column's one-hot slots are named
 * `column=value` in a Dataset, which no schema column name may be (`=` is not allowed, and the value
 * is data): in the shard they are float columns `column (0)`, `column (1)`, ... in value order.
 */
function shardColumnNames(featureNames: readonly string[]): string[] {
  const next = new Map<string, number>();
  return featureNames.map((name) => {
    const eq = name.indexOf("=");
    if (eq < 0) return name;
    const column = name.slice(0, eq);
    const k = next.get(column) ?? 0;
    next.set(column, k + 1);
    return `${column} (${k})`;
  });
}

/** Write one client's shard as a CSV with a schema that declares the federation's scaling. */
function writeCsvShard(
  dir: string,
  datasetId: string,
  shard: Dataset,
  source: CsvDatasetSchema,
  st: Standardizer,
): void {
  mkdirSync(dirname(join(dir, datasetId)), { recursive: true });
  const labelCol = source.label.column;
  const names = shardColumnNames(shard.featureNames);
  const header = [...names, labelCol];
  const lines = [header.join(",")];
  for (let r = 0; r < shard.rows; r++) {
    const row: string[] = [];
    for (let j = 0; j < shard.numFeatures; j++) row.push(String(shard.features[r * shard.numFeatures + j]));
    row.push(shard.classNames[shard.labels[r]]);
    lines.push(row.join(","));
  }
  writeFileSync(join(dir, datasetId), lines.join("\n") + "\n");
  const schema = {
    format: "csv",
    description: `simulation shard of ${datasetId}`,
    header: true,
    columns: [
      ...names.map((name) => ({ name, type: "float" })),
      { name: labelCol, type: "category", values: [...shard.classNames] },
    ],
    label: { column: labelCol, classes: [...shard.classNames] },
    standardization: { mean: Array.from(st.mean), std: Array.from(st.std) },
  };
  writeFileSync(join(dir, schemaIdsFor(datasetId)[0]), JSON.stringify(schema, null, 2));
}
