import { describe, expect, it } from "vitest";
import { SeededRandom } from "../random.js";
import { poissonSample } from "./trainer.js";

describe("poissonSample", () => {
  it("includes each index independently with probability q (marginals, batch-size law, pairs)", () => {
    const rng = new SeededRandom("poisson");
    const n = 50;
    const q = 0.13;
    const trials = 40_000;
    const hits = new Float64Array(n);
    let pair = 0; // indices 3 and 4 together: q² if independent
    let s1 = 0;
    let s2 = 0;
    const out: number[] = [];
    for (let t = 0; t < trials; t++) {
      poissonSample(n, q, rng, out);
      for (const i of out) hits[i]++;
      if (out.includes(3) && out.includes(4)) pair++;
      s1 += out.length;
      s2 += out.length ** 2;
      for (let j = 1; j < out.length; j++) expect(out[j]).toBeGreaterThan(out[j - 1]);
    }
    const sd = Math.sqrt((q * (1 - q)) / trials);
    for (let i = 0; i < n; i++) expect(Math.abs(hits[i] / trials - q)).toBeLessThan(5 * sd);
    const mean = s1 / trials;
    const variance = s2 / trials - mean * mean;
    expect(Math.abs(mean - n * q)).toBeLessThan(5 * Math.sqrt((n * q * (1 - q)) / trials));
    expect(Math.abs(variance / (n * q * (1 - q)) - 1)).toBeLessThan(0.05); // binomial variance
    expect(Math.abs(pair / trials - q * q)).toBeLessThan(5 * Math.sqrt((q * q * (1 - q * q)) / trials));
  });

  it("handles q = 0, q = 1 and empty batches", () => {
    const out: number[] = [1];
    poissonSample(10, 0, new SeededRandom(1), out);
    expect(out).toEqual([]);
    poissonSample(4, 1, new SeededRandom(1), out);
    expect(out).toEqual([0, 1, 2, 3]);
    let empty = 0;
    for (let t = 0; t < 2000; t++) {
      poissonSample(5, 0.1, new SeededRandom(`e${t}`), out);
      if (out.length === 0) empty++;
    }
    expect(Math.abs(empty / 2000 - 0.9 ** 5)).toBeLessThan(0.05); // empty batches happen, as often as they should
  });
});
