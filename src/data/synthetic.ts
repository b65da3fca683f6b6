import { EnclaveError } from "../errors.js";
import { permutation, SeededRandom, type RandomSource } from "../random.js";
import type { Dataset } from "./dataset.js";
import { sampleStandardNormal } from "./distributions.js";
import { FASHION_MNIST_CLASSES } from "./fashion-mnist.js";

export interface SyntheticOptions {
  rows: number;
  numFeatures: number;
  numClasses: number;
  seed?: number | string;
  rng?: RandomSource;
  /** Distance scale between class centres relative to the unit noise (default 1). */
  separation?: number;
  /** Squash features into (0, 1) with a logistic, like pixel intensities (default false). */
  unitInterval?: boolean;
  classNames?: readonly string[];
}

/**
 * Learnable stand-in data: one Gaussian cluster per class (random centres, unit noise),
 * balanced classes in shuffled order. For benchmarks and tests when a real dataset is absent.
 */
export function syntheticDataset(o: SyntheticOptions): Dataset {
  for (const [k, v] of [
    ["rows", o.rows],
    ["numFeatures", o.numFeatures],
    ["numClasses", o.numClasses],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 1) throw new EnclaveError("SYNTHETIC_INVALID_ARGUMENT", `${k} must be an integer >= 1`);
  }
  const rng = o.rng ?? new SeededRandom(o.seed ?? 0);
  const sep = o.separation ?? 1;
  const { rows, numFeatures: d, numClasses: k } = o;
  const centres = new Float64Array(k * d);
  for (let i = 0; i < centres.length; i++) centres[i] = sep * sampleStandardNormal(rng);
  const order = permutation(rows, rng);
  const labels = new Int32Array(rows);
  for (let i = 0; i < rows; i++) labels[order[i]] = i % k;
  const features = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++) {
    const c = labels[r] * d;
    for (let j = 0; j < d; j++) {
      const v = centres[c + j] + sampleStandardNormal(rng);
      features[r * d + j] = o.unitInterval ? 1 / (1 + Math.exp(-v)) : v;
    }
  }
  const classNames = o.classNames ?? Array.from({ length: k }, (_, i) => `class_${i}`);
  if (classNames.length !== k) throw new EnclaveError("SYNTHETIC_INVALID_ARGUMENT", "classNames.length must equal numClasses");
  return {
    features,
    labels,
    rows,
    numFeatures: d,
    numClasses: k,
    featureNames: Array.from({ length: d }, (_, i) => `x_${i}`),
    classNames: [...classNames],
  };
}

/** Synthetic data shaped like Fashion-MNIST (784 features in (0, 1) as [1, 28, 28] images, 10 classes). */
export function syntheticFashionMnistLike(rows: number, seed: number | string = 0): Dataset {
  const ds = syntheticDataset({
    rows,
    numFeatures: 784,
    numClasses: 10,
    seed,
    unitInterval: true,
    classNames: FASHION_MNIST_CLASSES,
  });
  return { ...ds, exampleShape: [1, 28, 28] };
}
