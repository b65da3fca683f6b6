import { EnclaveError } from "../errors.js";
import { permutation, type RandomSource } from "../random.js";
import { classCounts, subsetDataset, type Dataset } from "./dataset.js";
import { sampleDirichlet } from "./distributions.js";

/**
 * Partitioners for simulation: split one dataset into per-client shards of row indices.
 * Every partition is disjoint and covers all rows.
 */

function argError(rule: string): never {
  throw new EnclaveError("PARTITION_INVALID_ARGUMENT", `partition refused: ${rule}`);
}

function checkCount(value: number, what: string, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) argError(`${what} must be an integer >= ${min}`);
}

/** IID: a seeded shuffle cut into near-equal shards (sizes differ by at most one). */
export function iidPartition(numExamples: number, numClients: number, rng: RandomSource): Int32Array[] {
  checkCount(numExamples, "numExamples", 0);
  checkCount(numClients, "numClients", 1);
  if (numClients > numExamples) argError("numClients must be <= numExamples (every client needs data)");
  const order = permutation(numExamples, rng);
  const base = Math.floor(numExamples / numClients);
  const extra = numExamples % numClients;
  const shards: Int32Array[] = [];
  let off = 0;
  for (let c = 0; c < numClients; c++) {
    const size = base + (c < extra ? 1 : 0);
    shards.push(order.slice(off, off + size));
    off += size;
  }
  return shards;
}

export interface DirichletOptions {
  /** Concentration: small (0.1) gives strong label skew, large (1000) is close to IID. */
  alpha: number;
  /** Every client gets at least this many examples (default 10); draws are repeated until so. */
  minPerClient?: number;
  /** Give up after this many draws (default 1000). */
  maxAttempts?: number;
  /**
   * Stop giving a class to clients that already hold their fair share N / numClients
   * (NIID-Bench / FedLab "hetero Dirichlet"; Flower's `self_balancing`). Default true: it makes
   * the minimum-size condition reachable at small alpha.
   */
  selfBalancing?: boolean;
}

/**
 * Dirichlet label skew (Hsu et al. 2019; the NIID-Bench procedure of Li et al. 2022): for each
 * class, draw client proportions p ~ Dir(alpha, ..., alpha) and cut that class's shuffled rows
 * at the cumulative proportions. The whole draw is repeated until every client holds at least
 * `minPerClient` rows.
 */
export function dirichletPartition(
  labels: Int32Array,
  numClasses: number,
  numClients: number,
  options: DirichletOptions,
  rng: RandomSource,
): Int32Array[] {
  checkCount(numClasses, "numClasses", 1);
  checkCount(numClients, "numClients", 1);
  const { alpha } = options;
  if (!(alpha > 0) || !Number.isFinite(alpha)) argError("alpha must be a finite number > 0");
  const minPerClient = options.minPerClient ?? 10;
  const maxAttempts = options.maxAttempts ?? 1000;
  const selfBalancing = options.selfBalancing ?? true;
  checkCount(minPerClient, "minPerClient", 0);
  checkCount(maxAttempts, "maxAttempts", 1);
  const n = labels.length;
  if (numClients * minPerClient > n) argError("numClients * minPerClient must be <= the number of rows");

  const counts = classCounts(labels, numClasses);
  const byClass: Int32Array[] = Array.from({ length: numClasses }, (_, k) => new Int32Array(counts[k]));
  const fill = new Int32Array(numClasses);
  for (let i = 0; i < n; i++) byClass[labels[i]][fill[labels[i]]++] = i;

  const alphas = new Float64Array(numClients).fill(alpha);
  const fairShare = n / numClients;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const shards: number[][] = Array.from({ length: numClients }, () => []);
    for (let k = 0; k < numClasses; k++) {
      const rows = byClass[k];
      if (rows.length === 0) continue;
      const order = permutation(rows.length, rng);
      const p = sampleDirichlet(alphas, rng);
      if (selfBalancing) {
        let sum = 0;
        for (let c = 0; c < numClients; c++) {
          if (shards[c].length >= fairShare) p[c] = 0;
          sum += p[c];
        }
        if (sum > 0) for (let c = 0; c < numClients; c++) p[c] /= sum;
        else p.fill(1 / numClients);
      }
      // Cut points floor(cumsum(p) * n_k), the last one pinned to n_k so no row is lost to rounding.
      let cum = 0;
      let start = 0;
      for (let c = 0; c < numClients; c++) {
        cum += p[c];
        const end = c === numClients - 1 ? rows.length : Math.min(rows.length, Math.floor(cum * rows.length));
        for (let j = start; j < end; j++) shards[c].push(rows[order[j]]);
        start = Math.max(start, end);
      }
    }
    if (shards.every((s) => s.length >= minPerClient)) {
      return shards.map((s) => {
        const perm = permutation(s.length, rng);
        return Int32Array.from(perm, (j) => s[j]);
      });
    }
  }
  throw new EnclaveError(
    "PARTITION_INFEASIBLE",
    `partition refused: no Dirichlet draw gave every client >= ${minPerClient} rows in ${maxAttempts} attempts`,
  );
}

/** The per-client datasets of a partition. */
export function partitionDataset(ds: Dataset, shards: readonly Int32Array[]): Dataset[] {
  return shards.map((s) => subsetDataset(ds, s));
}

/** Shannon entropy (nats) of the label distribution of `indices`; 0 for an empty shard. */
export function labelEntropy(labels: Int32Array, indices: ArrayLike<number>, numClasses: number): number {
  const counts = new Float64Array(numClasses);
  for (let i = 0; i < indices.length; i++) counts[labels[indices[i]]]++;
  let h = 0;
  for (const c of counts) {
    if (c > 0) {
      const p = c / indices.length;
      h -= p * Math.log(p);
    }
  }
  return h;
}
