import { EnclaveError } from "../errors.js";

/**
 * A loaded, validated dataset: `rows` examples of `numFeatures` floats (row-major) and an integer
 * label in [0, numClasses) per row. Structurally a training `Examples`.
 */
export interface Dataset {
  features: Float32Array;
  labels: Int32Array;
  rows: number;
  numFeatures: number;
  numClasses: number;
  featureNames: readonly string[];
  classNames: readonly string[];
  /** Per-example shape of the features when they are not flat: [channels, height, width] for images. */
  exampleShape?: readonly number[];
}

/** Throws DATASET_INCONSISTENT unless the arrays and counts of `ds` agree and every label is a class. */
export function assertDataset(ds: Dataset): void {
  const fail = (rule: string): never => {
    throw new EnclaveError("DATASET_INCONSISTENT", `dataset is inconsistent: ${rule}`);
  };
  if (!Number.isSafeInteger(ds.rows) || ds.rows < 0) fail("rows must be a non-negative integer");
  if (!Number.isSafeInteger(ds.numFeatures) || ds.numFeatures < 1) fail("numFeatures must be a positive integer");
  if (!Number.isSafeInteger(ds.numClasses) || ds.numClasses < 1) fail("numClasses must be a positive integer");
  if (ds.features.length !== ds.rows * ds.numFeatures) fail("features.length must equal rows * numFeatures");
  if (ds.labels.length !== ds.rows) fail("labels.length must equal rows");
  if (ds.featureNames.length !== ds.numFeatures) fail("featureNames.length must equal numFeatures");
  if (ds.classNames.length !== ds.numClasses) fail("classNames.length must equal numClasses");
  for (let i = 0; i < ds.rows; i++) {
    const y = ds.labels[i];
    if (y < 0 || y >= ds.numClasses) fail(`label of row ${i + 1} is outside [0, numClasses)`);
  }
}

/** The rows of `ds` at `indices` (in that order), copied. */
export function subsetDataset(ds: Dataset, indices: ArrayLike<number>): Dataset {
  const d = ds.numFeatures;
  const n = indices.length;
  const features = new Float32Array(n * d);
  const labels = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const i = indices[r];
    if (!Number.isInteger(i) || i < 0 || i >= ds.rows) {
      throw new EnclaveError("DATASET_INDEX_OUT_OF_RANGE", `subset index at position ${r} is outside [0, rows)`);
    }
    features.set(ds.features.subarray(i * d, (i + 1) * d), r * d);
    labels[r] = ds.labels[i];
  }
  return { ...ds, features, labels, rows: n };
}

/** Number of examples of each class. */
export function classCounts(labels: ArrayLike<number>, numClasses: number): Int32Array {
  const counts = new Int32Array(numClasses);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= numClasses) {
      throw new EnclaveError("DATASET_INCONSISTENT", `label at position ${i} is outside [0, numClasses)`);
    }
    counts[y]++;
  }
  return counts;
}
