import { statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { EnclaveError } from "../errors.js";
import type { Dataset } from "./dataset.js";
import { loadDataset, type LoadedDataset } from "./load.js";
import type { SentryLimits } from "./sentry.js";

/**
 * Fashion-MNIST (Xiao, Rasul, Vollgraf 2017, MIT licence) is not bundled (30 MB). It is looked
 * up on the machine; benchmarks fall back to synthetic data of the same shape when it is absent.
 */

export const FASHION_MNIST_CLASSES = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
] as const;

export const FASHION_MNIST_ENV = "ENCLAVE_FASHION_MNIST_DIR";
export const FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist";

export type FashionMnistSplit = "train" | "test";

const prefixOf = (split: FashionMnistSplit) => (split === "train" ? "train" : "t10k");

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** File names of one split in `dir` (gzip preferred over raw), or null when either is missing. */
export function fashionMnistFiles(dir: string, split: FashionMnistSplit): { images: string; labels: string } | null {
  const pick = (stem: string) => [`${stem}.gz`, stem].find((name) => isFile(join(dir, name)));
  const images = pick(`${prefixOf(split)}-images-idx3-ubyte`);
  const labels = pick(`${prefixOf(split)}-labels-idx1-ubyte`);
  return images && labels ? { images, labels } : null;
}

/** Where Fashion-MNIST is looked for, in order. */
export function fashionMnistCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  // src/data/ and dist/data/ are both two levels below the repository root.
  const besideRepo = fileURLToPath(new URL("../../../shared/datasets/fashion-mnist", import.meta.url));
  const fromEnv = env[FASHION_MNIST_ENV];
  return [...(fromEnv ? [fromEnv] : []), besideRepo, FASHION_MNIST_SYSTEM_DIR];
}

/**
 * The first candidate directory holding the requested splits (default both), or null.
 * Candidates: $ENCLAVE_FASHION_MNIST_DIR, ../shared/datasets/fashion-mnist beside the repo,
 * /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist).
 */
export function findFashionMnist(
  options: { env?: NodeJS.ProcessEnv; splits?: FashionMnistSplit[] } = {},
): string | null {
  const splits = options.splits ?? ["train", "test"];
  for (const dir of fashionMnistCandidates(options.env)) {
    if (splits.every((s) => fashionMnistFiles(dir, s) !== null)) return dir;
  }
  return null;
}

/**
 * Load one split from `dir` through the Data Sentry (dir is the data root): 60,000 (train) or
 * 10,000 (test) images of 784 pixels in [0, 1], labels 0..9.
 */
export async function loadFashionMnist(dir: string, split: FashionMnistSplit, limits: SentryLimits = {}): Promise<Dataset> {
  return (await loadFashionMnistSource(dir, split, limits)).dataset;
}

/**
 * One split through the Data Sentry's front door (loadDataset with a declared IDX schema), so the
 * caller gets the file digests that key the privacy ledger.
 */
export async function loadFashionMnistSource(dir: string, split: FashionMnistSplit, limits: SentryLimits = {}): Promise<LoadedDataset> {
  if (split !== "train" && split !== "test") throw new TypeError('split must be "train" or "test"');
  const files = fashionMnistFiles(dir, split) ?? {
    images: `${prefixOf(split)}-images-idx3-ubyte.gz`,
    labels: `${prefixOf(split)}-labels-idx1-ubyte.gz`,
  };
  return loadDataset(dir, files.images, {
    ...limits,
    schema: { format: "idx", labels_file: files.labels, image_shape: [28, 28], classes: [...FASHION_MNIST_CLASSES], max_rows: 60_000 },
  });
}

/**
 * Both official splits from the first candidate directory, through the Data Sentry; DATASET_NOT_FOUND
 * naming where it was looked for when no candidate holds them.
 */
export async function loadFashionMnistSplits(): Promise<{ train: LoadedDataset; test: LoadedDataset }> {
  const dir = findFashionMnist();
  if (!dir)
    throw new EnclaveError(
      "DATASET_NOT_FOUND",
      `Fashion-MNIST not found in ${fashionMnistCandidates().join(", ")}; set ${FASHION_MNIST_ENV} or install Debian's dataset-fashion-mnist`,
    );
  return { train: await loadFashionMnistSource(dir, "train"), test: await loadFashionMnistSource(dir, "test") };
}
