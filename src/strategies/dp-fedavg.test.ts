import { describe, expect, it } from "vitest";
import { CryptoRandom, SeededRandom } from "../random.js";
import { tensor, type TensorMap } from "../tensor/tensor.js";
import { clipFactor, DpFedAvg, sampleClients } from "./dp-fedavg.js";

const tm = (o: Record<string, number[]>): TensorMap =>
  new Map(Object.entries(o).map(([k, v]) => [k, tensor([v.length], Float32Array.from(v))]));
const vals = (m: TensorMap, k: string): number[] => [...m.get(k)!.data];
const seeded = (seed: string) => ({ rng: new SeededRandom(seed) });

describe("DP-FedAvg (McMahan et al. 2018)", () => {
  it("clips each client delta to L2 norm C over all tensors, sums, divides by qN", () => {
    // z = 1e-9: noise far below float32 resolution here, so the clipping is visible exactly.
    const s = new DpFedAvg(
      { clipNorm: 1, noiseMultiplier: 1e-9, samplingRate: 0.5, totalClients: 4, allowInsecureRandom: true },
      seeded("clip"),
    );
    const x = tm({ w: [1, 1], b: [0] });
    const agg = s.begin({ round: 0, global: x });
    // a: delta ([3, 0], [4]) has norm 5 → scaled by 1/5 across both tensors
    agg.add({ clientId: "a", weights: tm({ w: [4, 1], b: [4] }), numExamples: 1000, metrics: { loss: 1 } });
    // b: delta ([0.3, 0], [−0.4]) has norm 0.5 ≤ C → unchanged, numExamples ignored
    agg.add({ clientId: "b", weights: tm({ w: [1.3, 1], b: [-0.4] }), numExamples: 1 });
    const r = agg.finish();
    // x + (clip(a) + b) / (qN = 2)
    const w = vals(r.global, "w");
    const b = vals(r.global, "b");
    expect(w[0]).toBeCloseTo(1 + (0.6 + 0.3) / 2, 6);
    expect(w[1]).toBeCloseTo(1, 6);
    expect(b[0]).toBeCloseTo((0.8 - 0.4) / 2, 6);
    expect(r.privacy).toEqual({ noiseMultiplier: 1e-9, samplingRate: 0.5, clipNorm: 1, expectedClients: 2 });
    expect(r.metrics).toEqual({}); // client metrics are outside the guarantee
  });

  it("refuses more participants than the population it accounts for", () => {
    const s = new DpFedAvg(
      { clipNorm: 1, noiseMultiplier: 1, samplingRate: 1, totalClients: 1, allowInsecureRandom: true },
      seeded("count"),
    );
    const agg = s.begin({ round: 0, global: tm({ w: [0] }) });
    agg.add({ clientId: "a", weights: tm({ w: [0] }), numExamples: 1 });
    agg.add({ clientId: "b", weights: tm({ w: [0] }), numExamples: 1 });
    expect(() => agg.finish()).toThrow(expect.objectContaining({ code: "TOO_MANY_UPDATES" }));
  });

  it("clipFactor is min(1, C/norm)", () => {
    expect(clipFactor(5, 1)).toBe(0.2);
    expect(clipFactor(0.5, 1)).toBe(1);
    expect(clipFactor(0, 1)).toBe(1);
  });

  it("adds N(0, (zC)^2) per coordinate to the sum: std zC·η/(qN) on the model (statistical)", () => {
    const z = 1.3;
    const C = 0.7;
    const d = 20000;
    const s = new DpFedAvg(
      {
        clipNorm: C,
        noiseMultiplier: z,
        samplingRate: 0.5,
        totalClients: 4,
        serverLr: 0.8,
        allowInsecureRandom: true,
      },
      seeded("noise-variance"),
    );
    const x = tm({ w: new Array<number>(d).fill(2) });
    const agg = s.begin({ round: 0, global: x });
    agg.add({ clientId: "a", weights: x, numExamples: 1 }); // zero delta: the result is pure noise
    const noise = vals(agg.finish().global, "w").map((v) => v - 2);
    const std = (z * C * 0.8) / 2;
    const mean = noise.reduce((a, b) => a + b, 0) / d;
    const variance = noise.reduce((a, b) => a + (b - mean) ** 2, 0) / (d - 1);
    // sampling sd of the mean: std/√d; of the variance: std²·√(2/(d−1)). Allow 5 sd.
    expect(Math.abs(mean)).toBeLessThan((5 * std) / Math.sqrt(d));
    expect(Math.abs(variance / (std * std) - 1)).toBeLessThan(5 * Math.sqrt(2 / (d - 1)));
    // Gaussian shape: P(|X| < σ) = 0.6827, P(|X| < 2σ) = 0.9545 (binomial sd < 0.0035)
    const within = (k: number) => noise.filter((v) => Math.abs(v) < k * std).length / d;
    expect(Math.abs(within(1) - 0.6827)).toBeLessThan(0.02);
    expect(Math.abs(within(2) - 0.9545)).toBeLessThan(0.015);
  });

  it("draws fresh noise every round (no repeated stream)", () => {
    const s = new DpFedAvg(
      { clipNorm: 1, noiseMultiplier: 1, samplingRate: 1, totalClients: 1, allowInsecureRandom: true },
      seeded("fresh"),
    );
    const x = tm({ w: [0, 0, 0, 0] });
    const results = [0, 1].map((round) => {
      const agg = s.begin({ round, global: x });
      agg.add({ clientId: "a", weights: x, numExamples: 1 });
      return vals(agg.finish().global, "w");
    });
    expect(results[0]).not.toEqual(results[1]);
  });

  it("refuses a non-cryptographic noise source unless explicitly allowed; defaults to the OS CSPRNG", () => {
    const o = { clipNorm: 1, noiseMultiplier: 1, samplingRate: 1, totalClients: 3 };
    expect(() => new DpFedAvg(o, seeded("x"))).toThrow(expect.objectContaining({ code: "INSECURE_RANDOM" }));
    const s = new DpFedAvg(o);
    const agg = s.begin({ round: 0, global: tm({ w: [0] }) });
    agg.add({ clientId: "a", weights: tm({ w: [0] }), numExamples: 1 });
    expect(Number.isFinite(agg.finish().global.get("w")!.data[0])).toBe(true);
    expect(s.accounting).toEqual({ noiseMultiplier: 1, samplingRate: 1, clipNorm: 1, expectedClients: 3 });
    expect(() => new DpFedAvg({ ...o, noiseMultiplier: 0 })).toThrow(/noiseMultiplier/);
    expect(() => new DpFedAvg({ ...o, samplingRate: 1.5 })).toThrow(/samplingRate/);
  });

  it("sampleClients includes each client independently with probability q", () => {
    const ids = Array.from({ length: 10000 }, (_, i) => `c${i}`);
    const picked = sampleClients(ids, 0.3, new SeededRandom("sample"));
    // binomial sd = √(10000·0.3·0.7) ≈ 46
    expect(Math.abs(picked.length - 3000)).toBeLessThan(5 * 46);
    expect(new Set(picked).size).toBe(picked.length);
    expect(sampleClients(ids.slice(0, 5), 1, new CryptoRandom())).toEqual(ids.slice(0, 5));
    expect(() => sampleClients(ids, 0, new CryptoRandom())).toThrow(/samplingRate/);
  });
});
