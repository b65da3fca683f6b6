// FedAdam/FedYogi with `variant: "flower"` against Flower's own update rule
// (flwr.server.strategy.fedadam / fedyogi: m and v start at 0, the mean weighted by examples,
// FedAdam's step η·√(1 − β₂^(r+1)) / (1 − β₁^(r+1)) at server round r), at Flower's defaults
// η = 0.1, β₁ = 0.9, β₂ = 0.99, τ = 1e-9.
import { describe, expect, it } from "vitest";
import { tensor, type TensorMap } from "../tensor/tensor.js";
import { FedAdam, FedYogi } from "./fedopt.js";
import type { Strategy } from "./types.js";

const FLOWER = { serverLr: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-9, variant: "flower" } as const;
const tm = (v: number[]): TensorMap => new Map([["w", tensor([v.length], Float32Array.from(v))]]);
const w = (m: TensorMap): number[] => [...m.get("w")!.data];

/** Flower's arithmetic, written out in float64 as its numpy code does it. */
function flowerReference(rule: "adam" | "yogi", x0: number[], means: number[][]): number[][] {
  const { serverLr: eta, beta1: b1, beta2: b2, tau } = FLOWER;
  let x = [...x0];
  let m = x0.map(() => 0);
  let v = x0.map(() => 0);
  const out: number[][] = [];
  means.forEach((mean, i) => {
    const r = i + 1; // Flower's server_round counts from 1
    const d = mean.map((y, j) => y - x[j]);
    m = m.map((mj, j) => b1 * mj + (1 - b1) * d[j]);
    v =
      rule === "adam"
        ? v.map((vj, j) => b2 * vj + (1 - b2) * d[j] * d[j])
        : v.map((vj, j) => vj - (1 - b2) * d[j] * d[j] * Math.sign(vj - d[j] * d[j]));
    const step = rule === "adam" ? (eta * Math.sqrt(1 - b2 ** (r + 1))) / (1 - b1 ** (r + 1)) : eta;
    x = x.map((xj, j) => xj + (step * m[j]) / (Math.sqrt(v[j]) + tau));
    out.push(x);
  });
  return out;
}

/** One round: client a (3 examples) at mean + 1, client b (1 example) at mean − 3: the weighted mean. */
function round(s: Strategy, r: number, x: TensorMap, mean: number[]): TensorMap {
  const agg = s.begin({ round: r, global: x });
  agg.add({ clientId: "a", weights: tm(mean.map((y) => y + 1)), numExamples: 3 });
  agg.add({ clientId: "b", weights: tm(mean.map((y) => y - 3)), numExamples: 1 });
  return agg.finish().global;
}

describe('FedAdam / FedYogi, variant "flower"', () => {
  it("FedAdam's first step at Flower's defaults (hand-computed)", () => {
    // Δ = 2: m = 0.2, v = 0.04; η_norm = 0.1·√(1 − 0.99²)/(1 − 0.9²) = 0.0742459; step = η_norm·0.2/0.2
    const x1 = round(new FedAdam(FLOWER), 1, tm([1]), [3]);
    expect(w(x1)[0]).toBeCloseTo(1 + (0.1 * Math.sqrt(1 - 0.99 ** 2)) / (1 - 0.9 ** 2), 6);
    expect(w(x1)[0]).toBeCloseTo(1.0742459, 6);
  });

  for (const [name, make, rule] of [
    ["FedAdam", () => new FedAdam(FLOWER), "adam"],
    ["FedYogi", () => new FedYogi(FLOWER), "yogi"],
  ] as const) {
    it(`${name}: five rounds match Flower's rule coordinate by coordinate`, () => {
      const x0 = [0.5, -1, 2, 0];
      const means = [
        [1.5, -0.5, 1, 0.25],
        [2, 0, 0.5, -0.25],
        [2.25, 0.5, 0.5, 0],
        [1, 0.25, 0.75, 1],
        [1.5, -0.75, 1.25, 0.5],
      ];
      const ref = flowerReference(rule, x0, means);
      const s = make();
      let x = tm(x0);
      means.forEach((mean, i) => {
        x = round(s, i + 1, x, mean);
        w(x).forEach((xi, j) => expect(xi, `${name} round ${i + 1} w[${j}]`).toBeCloseTo(ref[i][j], 5));
      });
    });
  }

  it("differs from the paper's variant (v from τ², no bias correction) on the same rounds", () => {
    const flower = round(new FedAdam(FLOWER), 1, tm([1]), [3]);
    const reddi = round(new FedAdam({ ...FLOWER, variant: "reddi", weighting: "examples" }), 1, tm([1]), [3]);
    expect(w(reddi)[0]).toBeCloseTo(1 + 0.1, 6); // m/(√v + τ) = 0.2/0.2 with τ tiny: the plain η
    expect(w(flower)[0]).not.toBeCloseTo(w(reddi)[0], 3);
  });
});
