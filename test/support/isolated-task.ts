import { resolve } from "node:path";
import type { LocalTrainingOptions } from "../../src/training/local-training.js";

/**
 * The small seeded DP task the isolated-runtime tests train in-process and in a guest: 455 training
 * rows of the bundled breast-cancer data, one epoch at batch 32 (15 steps), a one-layer MLP.
 */
export const SMALL_TASK: Omit<LocalTrainingOptions, "workspace"> = {
  datasetFile: resolve("data/breast-cancer-wisconsin.csv"),
  arch: "SimpleMLP",
  hidden: [8],
  epochs: 1,
  targetEpsilon: 2,
  delta: 1e-5,
  maxGradNorm: 1,
  batchSize: 32,
  learningRate: 0.05,
  momentum: 0.9,
  accountant: "rdp",
  testFraction: 0.2,
  seed: "isolated-runtime",
};

/** The same arithmetic in a guest as here: one native CPU path, one thread (the guest gets these pins). */
export function pinKernels(): void {
  process.env.ENCLAVE_KERNELS_CPU = "generic";
  process.env.ENCLAVE_THREADS = "1";
}
