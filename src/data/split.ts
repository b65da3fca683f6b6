import { EnclaveError } from "../errors.js";
import { permutation, SeededRandom, type RandomSource } from "../random.js";
import { classCounts, subsetDataset, type Dataset } from "./dataset.js";
import { applyStandardizer, fitStandardizer, type Standardizer } from "./standardize.js";

function argError(rule: string): never {
  throw new EnclaveError("SPLIT_INVALID_ARGUMENT", `split refused: ${rule}`);
}

/**
 * Stratified train/test split of row indices. The test set has ceil(testFraction * n) rows (as
 * scikit-learn's train_test_split); each class contributes in proportion, rounding by largest
 * remainder (ties to the lower class index), and keeping at least one row of every class in train.
 */
export function stratifiedSplit(
  labels: Int32Array,
  numClasses: number,
  testFraction: number,
  rng: RandomSource,
): { train: Int32Array; test: Int32Array } {
  if (!(testFraction > 0 && testFraction < 1)) argError("testFraction must be in (0, 1)");
  const n = labels.length;
  const counts = classCounts(labels, numClasses);
  const nTest = Math.ceil(testFraction * n);
  if (nTest < 1 || n - nTest < 1) argError("both the train and the test split must be non-empty");

  const take = new Int32Array(numClasses);
  const room = (k: number) => (counts[k] >= 2 ? counts[k] - 1 : 0) - take[k];
  let assigned = 0;
  for (let k = 0; k < numClasses; k++) {
    take[k] = Math.min(Math.floor((counts[k] * nTest) / n), Math.max(0, counts[k] - 1));
    assigned += take[k];
  }
  const byRemainder = Array.from({ length: numClasses }, (_, k) => k).sort((a, b) => {
    const ra = (counts[a] * nTest) / n - Math.floor((counts[a] * nTest) / n);
    const rb = (counts[b] * nTest) / n - Math.floor((counts[b] * nTest) / n);
    return rb - ra || a - b;
  });
  // Hand out the remaining rows by largest remainder: first keeping one row of every class in
  // train, then (only if that cannot reach nTest) limited by the class sizes alone.
  for (const strict of [true, false]) {
    let progressed = true;
    while (assigned < nTest && progressed) {
      progressed = false;
      for (const k of byRemainder) {
        if (assigned >= nTest) break;
        if (strict ? room(k) > 0 : take[k] < counts[k]) {
          take[k]++;
          assigned++;
          progressed = true;
        }
      }
    }
  }

  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < n; i++) byClass[labels[i]].push(i);
  const train: number[] = [];
  const test: number[] = [];
  for (let k = 0; k < numClasses; k++) {
    const rows = byClass[k];
    const order = permutation(rows.length, rng);
    for (let j = 0; j < rows.length; j++) (j < take[k] ? test : train).push(rows[order[j]]);
  }
  const shuffled = (xs: number[]) => {
    const p = permutation(xs.length, rng);
    return Int32Array.from(p, (j) => xs[j]);
  };
  return { train: shuffled(train), test: shuffled(test) };
}

export interface PreparedDataset {
  train: Dataset;
  test: Dataset;
  /** Fitted on the train split only; apply it to any later input of the same model. */
  standardizer: Standardizer | null;
}

export interface PrepareOptions {
  testFraction: number;
  /** Seed or source of the split's randomness. */
  seed?: number | string;
  rng?: RandomSource;
  /** Standardise features with train-split statistics (default true). */
  standardize?: boolean;
}

/**
 * Seeded stratified split, then standardisation fitted on the train split only and applied to
 * both, so no statistic of the test rows leaks into training.
 */
export function prepareDataset(ds: Dataset, options: PrepareOptions): PreparedDataset {
  const rng = options.rng ?? (options.seed !== undefined ? new SeededRandom(options.seed) : undefined);
  if (!rng) argError("a seed or a RandomSource is required");
  const { train: trainIdx, test: testIdx } = stratifiedSplit(ds.labels, ds.numClasses, options.testFraction, rng);
  const train = subsetDataset(ds, trainIdx);
  const test = subsetDataset(ds, testIdx);
  if (options.standardize === false) return { train, test, standardizer: null };
  const standardizer = fitStandardizer(train);
  return { train: applyStandardizer(train, standardizer), test: applyStandardizer(test, standardizer), standardizer };
}
