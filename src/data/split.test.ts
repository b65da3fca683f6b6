import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../random.js";
import { classCounts, type Dataset } from "./dataset.js";
import { loadDataset } from "./load.js";
import { prepareDataset, stratifiedSplit } from "./split.js";
import { applyStandardizer, fitStandardizer } from "./standardize.js";

const BUNDLED = fileURLToPath(new URL("../../data/", import.meta.url));

function table(rows: number[][], labels: number[], numClasses = 2): Dataset {
  const d = rows[0].length;
  return {
    features: Float32Array.from(rows.flat()),
    labels: Int32Array.from(labels),
    rows: rows.length,
    numFeatures: d,
    numClasses,
    featureNames: Array.from({ length: d }, (_, i) => `f${i}`),
    classNames: Array.from({ length: numClasses }, (_, i) => `c${i}`),
  };
}

describe("stratified split", () => {
  it("splits breast-cancer 80/20 like scikit-learn: 114 test rows, 42 or 43 malignant", async () => {
    const { dataset } = await loadDataset(BUNDLED, "breast-cancer-wisconsin.csv");
    const { train, test } = stratifiedSplit(dataset.labels, 2, 0.2, new SeededRandom(42));
    // ceil(0.2 * 569) = 114; shares 212 * 0.2 = 42.4 and 357 * 0.2 = 71.4, one remainder row to hand out.
    expect(test.length).toBe(114);
    expect(train.length).toBe(455);
    const testCounts = Array.from(classCounts(Array.from(test, (i) => dataset.labels[i]), 2));
    expect(testCounts[0] + testCounts[1]).toBe(114);
    expect([42, 43]).toContain(testCounts[0]);
    const all = new Set([...train, ...test]);
    expect(all.size).toBe(569);
  });

  it("is deterministic per seed", () => {
    const labels = Int32Array.from({ length: 200 }, (_, i) => i % 3);
    const a = stratifiedSplit(labels, 3, 0.25, new SeededRandom(1));
    expect(stratifiedSplit(labels, 3, 0.25, new SeededRandom(1))).toEqual(a);
    expect(stratifiedSplit(labels, 3, 0.25, new SeededRandom(2))).not.toEqual(a);
  });

  it("keeps every class in train even when a class is tiny", () => {
    // Classes of 1, 2 and 97 rows; 50% test would otherwise put the singleton in test.
    const labels = Int32Array.from([0, 1, 1, ...new Array(97).fill(2)]);
    const { train, test } = stratifiedSplit(labels, 3, 0.5, new SeededRandom(3));
    expect(test.length).toBe(50);
    const trainCounts = classCounts(Array.from(train, (i) => labels[i]), 3);
    expect(trainCounts[0]).toBe(1);
    expect(trainCounts[1]).toBeGreaterThanOrEqual(1);
  });

  it("refuses fractions outside (0, 1) and empty sides", () => {
    const labels = Int32Array.from([0, 1, 0, 1]);
    expect(() => stratifiedSplit(labels, 2, 0, new SeededRandom(1))).toThrow(/\(0, 1\)/);
    expect(() => stratifiedSplit(labels, 2, 1, new SeededRandom(1))).toThrow(/\(0, 1\)/);
    expect(() => stratifiedSplit(Int32Array.from([0]), 2, 0.5, new SeededRandom(1))).toThrow(/non-empty/);
  });
});

describe("standardisation", () => {
  it("uses population statistics and maps zero-spread features to 0 (hand-computed)", () => {
    const ds = table(
      [
        [1, 5],
        [3, 5],
        [5, 5],
      ],
      [0, 1, 0],
    );
    const st = fitStandardizer(ds);
    expect(Array.from(st.mean)).toEqual([3, 5]);
    // Population std of 1, 3, 5 is sqrt(8/3); the constant column gets std 1.
    expect(st.std[0]).toBeCloseTo(Math.sqrt(8 / 3), 12);
    expect(st.std[1]).toBe(1);
    const out = applyStandardizer(ds, st);
    const z = 2 / Math.sqrt(8 / 3);
    expect(Array.from(out.features)).toEqual([-z, 0, 0, 0, z, 0].map(Math.fround));
  });

  it("skips missing values when fitting and imputes them as 0 (the train mean)", () => {
    const ds = table(
      [
        [2, NaN],
        [4, 1],
        [NaN, 3],
      ],
      [0, 1, 1],
    );
    const st = fitStandardizer(ds);
    expect(Array.from(st.mean)).toEqual([3, 2]);
    expect(Array.from(st.std)).toEqual([1, 1]);
    expect(Array.from(applyStandardizer(ds, st).features)).toEqual([-1, 0, 1, -1, 0, 1]);
  });

  it("fits on the train split only and applies the same statistics to test", async () => {
    const { dataset } = await loadDataset(BUNDLED, "breast-cancer-wisconsin.csv");
    const { train, test, standardizer } = prepareDataset(dataset, { testFraction: 0.2, seed: 7 });
    expect(standardizer).not.toBeNull();
    // Train features are centred and scaled; test features carry the train statistics, so not exactly.
    const colMean = (ds: Dataset, j: number) => {
      let s = 0;
      for (let r = 0; r < ds.rows; r++) s += ds.features[r * ds.numFeatures + j];
      return s / ds.rows;
    };
    for (let j = 0; j < 30; j++) expect(Math.abs(colMean(train, j))).toBeLessThan(1e-5);
    expect(Math.max(...Array.from({ length: 30 }, (_, j) => Math.abs(colMean(test, j))))).toBeGreaterThan(1e-3);
    // Recompute one test value by hand from the raw row and the train statistics.
    const { train: ti, test: si } = stratifiedSplit(dataset.labels, 2, 0.2, new SeededRandom(7));
    let sum = 0;
    for (const i of ti) sum += dataset.features[i * 30];
    const mean = sum / ti.length;
    let sq = 0;
    for (const i of ti) sq += (dataset.features[i * 30] - mean) ** 2;
    const std = Math.sqrt(sq / ti.length);
    expect(test.features[0]).toBeCloseTo((dataset.features[si[0] * 30] - mean) / std, 5);
    expect(test.labels[0]).toBe(dataset.labels[si[0]]);
  });

  it("refuses a standardizer of another width", () => {
    const ds = table([[1, 2]], [0]);
    expect(() => applyStandardizer(ds, { mean: new Float64Array(3), std: new Float64Array(3) })).toThrow(/3 features/);
  });
});
