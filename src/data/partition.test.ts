import { describe, expect, it } from "vitest";
import { SeededRandom } from "../random.js";
import { classCounts } from "./dataset.js";
import { dirichletPartition, iidPartition, labelEntropy, partitionDataset } from "./partition.js";
import { syntheticDataset } from "./synthetic.js";

/** 5,000 labels, 10 balanced classes, in a scrambled order. */
const K = 10;
const labels = Int32Array.from({ length: 5000 }, (_, i) => (i * 7919) % K);

function expectDisjointCover(shards: Int32Array[], n: number): void {
  const seen = new Uint8Array(n);
  for (const s of shards) {
    for (const i of s) {
      expect(seen[i], `row ${i} assigned twice`).toBe(0);
      seen[i] = 1;
    }
  }
  expect(seen.every((v) => v === 1)).toBe(true);
}

const meanEntropy = (shards: Int32Array[]) => shards.reduce((h, s) => h + labelEntropy(labels, s, K), 0) / shards.length;

/** Largest total-variation distance between a client's label distribution and the global one. */
function maxTvDistance(shards: Int32Array[]): number {
  const global = Array.from(classCounts(labels, K), (c) => c / labels.length);
  let worst = 0;
  for (const s of shards) {
    const local = classCounts(Array.from(s, (i) => labels[i]), K);
    let tv = 0;
    for (let k = 0; k < K; k++) tv += Math.abs(local[k] / s.length - global[k]) / 2;
    worst = Math.max(worst, tv);
  }
  return worst;
}

describe("IID partition", () => {
  it("cuts a seeded shuffle into near-equal, disjoint shards covering every row", () => {
    const shards = iidPartition(103, 10, new SeededRandom(1));
    expect(shards.map((s) => s.length)).toEqual([11, 11, 11, 10, 10, 10, 10, 10, 10, 10]);
    expectDisjointCover(shards, 103);
  });

  it("is deterministic per seed and differs across seeds", () => {
    const a = iidPartition(1000, 4, new SeededRandom("s"));
    const b = iidPartition(1000, 4, new SeededRandom("s"));
    const c = iidPartition(1000, 4, new SeededRandom("t"));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it("refuses more clients than rows and bad counts", () => {
    expect(() => iidPartition(3, 4, new SeededRandom(1))).toThrow(/numClients must be <= numExamples/);
    expect(() => iidPartition(10, 0, new SeededRandom(1))).toThrow(/numClients must be an integer >= 1/);
    expect(() => iidPartition(10.5, 2, new SeededRandom(1))).toThrow(/numExamples/);
  });
});

describe("Dirichlet label-skew partition", () => {
  it("is disjoint, covers the data and gives every client the minimum", () => {
    for (const alpha of [0.05, 0.1, 1, 1000]) {
      const shards = dirichletPartition(labels, K, 10, { alpha, minPerClient: 20 }, new SeededRandom(`a${alpha}`));
      expect(shards).toHaveLength(10);
      expectDisjointCover(shards, labels.length);
      for (const s of shards) expect(s.length).toBeGreaterThanOrEqual(20);
    }
  });

  it("is deterministic per seed", () => {
    const run = (seed: string) => dirichletPartition(labels, K, 8, { alpha: 0.3 }, new SeededRandom(seed));
    expect(run("x")).toEqual(run("x"));
    expect(run("x")).not.toEqual(run("y"));
  });

  it("alpha 0.1 is strongly skewed: per-client label entropy far below IID", () => {
    const iid = iidPartition(labels.length, 10, new SeededRandom(3));
    const skewed = dirichletPartition(labels, K, 10, { alpha: 0.1 }, new SeededRandom(3));
    const hIid = meanEntropy(iid);
    const hSkew = meanEntropy(skewed);
    // IID shards of 500 rows are close to the uniform entropy ln 10 = 2.303 nats.
    expect(hIid).toBeGreaterThan(0.99 * Math.log(K));
    expect(hSkew).toBeLessThan(0.5 * hIid);
    expect(maxTvDistance(skewed)).toBeGreaterThan(0.5);
  });

  it("alpha 1000 is near-IID", () => {
    const shards = dirichletPartition(labels, K, 10, { alpha: 1000 }, new SeededRandom(4));
    expect(meanEntropy(shards)).toBeGreaterThan(0.99 * Math.log(K));
    expect(maxTvDistance(shards)).toBeLessThan(0.08);
    for (const s of shards) expect(Math.abs(s.length - 500)).toBeLessThan(60);
  });

  it("redraws until the minimum holds, and refuses an infeasible request", () => {
    // Without self-balancing, alpha 0.05 over 20 clients rarely gives everyone 50 rows at once.
    const opts = { alpha: 0.05, minPerClient: 50, selfBalancing: false, maxAttempts: 2 };
    expect(() => dirichletPartition(labels, K, 20, opts, new SeededRandom(5))).toThrow(/PARTITION|no Dirichlet draw/);
    expect(() => dirichletPartition(labels, K, 10, { alpha: 1, minPerClient: 501 }, new SeededRandom(5))).toThrow(
      /numClients \* minPerClient/,
    );
    const ok = dirichletPartition(labels, K, 20, { alpha: 0.05, minPerClient: 50 }, new SeededRandom(5));
    for (const s of ok) expect(s.length).toBeGreaterThanOrEqual(50);
  });

  it("validates its arguments", () => {
    const rng = new SeededRandom(6);
    expect(() => dirichletPartition(labels, K, 5, { alpha: 0 }, rng)).toThrow(/alpha/);
    expect(() => dirichletPartition(labels, K, 5, { alpha: Infinity }, rng)).toThrow(/alpha/);
    expect(() => dirichletPartition(labels, 5, 5, { alpha: 1 }, rng)).toThrow(/outside \[0, numClasses\)/);
  });
});

describe("partitionDataset", () => {
  it("copies each client's rows with their labels", () => {
    const ds = syntheticDataset({ rows: 60, numFeatures: 3, numClasses: 3, seed: 1 });
    const shards = iidPartition(60, 3, new SeededRandom(2));
    const parts = partitionDataset(ds, shards);
    expect(parts.map((p) => p.rows)).toEqual([20, 20, 20]);
    const i = shards[1][4];
    expect(Array.from(parts[1].features.subarray(12, 15))).toEqual(Array.from(ds.features.subarray(i * 3, i * 3 + 3)));
    expect(parts[1].labels[4]).toBe(ds.labels[i]);
  });
});
