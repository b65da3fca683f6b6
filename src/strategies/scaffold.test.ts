import { describe, expect, it } from "vitest";
import { tensor, type TensorMap } from "../tensor/tensor.js";
import { AggregationError } from "./errors.js";
import { FedAvg } from "./fedavg.js";
import { proximalGradient } from "./fedprox.js";
import { Scaffold } from "./scaffold.js";
import {
  initialControlVariate,
  scaffoldControlUpdate,
  scaffoldCorrectGradient,
  scaffoldGradientHook,
} from "./scaffold-client.js";
import type { ClientUpdate, Strategy } from "./types.js";

const tm = (o: Record<string, number[]>): TensorMap =>
  new Map(Object.entries(o).map(([k, v]) => [k, tensor([v.length], Float32Array.from(v))]));
const vals = (m: TensorMap, k: string): number[] => [...m.get(k)!.data];

describe("SCAFFOLD client helpers", () => {
  it("corrects the gradient: g - c_i + c (hand-computed)", () => {
    const g = tm({ w: [1, 2] });
    scaffoldCorrectGradient(g, tm({ w: [0.5, 0.5] }), tm({ w: [1, -1] }));
    expect(vals(g, "w")).toEqual([0.5, 3.5]);
  });

  it("option II control update (hand-computed)", () => {
    // (x − y)/(K·lr) = ([1,1] − [0.5,2]) / 0.5 = [1, −2]
    // c_i⁺ = c_i − c + that = [1 − 0.5 + 1, −1 − 0.5 − 2];  Δc = c_i⁺ − c_i
    const r = scaffoldControlUpdate(
      tm({ w: [1, -1] }),
      tm({ w: [0.5, 0.5] }),
      tm({ w: [1, 1] }),
      tm({ w: [0.5, 2] }),
      5,
      0.1,
    );
    expect(vals(r.controlVariate, "w")).toEqual([1.5, -3.5]);
    expect(vals(r.controlDelta, "w")).toEqual([0.5, -2.5]);
  });

  it("c_i⁺ is the mean local gradient along the trajectory (plain SGD, c = c_i = 0)", () => {
    // f(w) = ½ Σ h_j (w_j − a_j)²: ∇f = h ⊙ (w − a)
    const h = [1, 3, 0.5];
    const a = [2, -1, 0.25];
    const x = [0.5, 0.5, 0.5];
    const K = 7;
    const lr = 0.1;
    const w = x.map(Math.fround);
    const gradSum = [0, 0, 0];
    for (let k = 0; k < K; k++) {
      for (let j = 0; j < 3; j++) {
        const g = h[j] * (w[j] - a[j]);
        gradSum[j] += g;
        w[j] = Math.fround(w[j] - lr * g);
      }
    }
    const zero = tm({ w: [0, 0, 0] });
    const r = scaffoldControlUpdate(zero, zero, tm({ w: x }), tm({ w }), K, lr);
    vals(r.controlVariate, "w").forEach((v, j) => expect(v).toBeCloseTo(gradSum[j] / K, 4));
  });

  it("the gradient hook adds c − c_i to every parameter each step", () => {
    const hook = scaffoldGradientHook(tm({ a: [1, 2], b: [0] }), tm({ a: [0.5, -1], b: [2] }));
    const params = [
      { name: "a", data: new Float32Array(2), grad: Float32Array.from([1, 1]) },
      { name: "b", data: new Float32Array(1), grad: Float32Array.from([1]) },
    ];
    hook(params);
    hook(params);
    expect([...params[0].grad]).toEqual([2, 7]);
    expect([...params[1].grad]).toEqual([-3]);
  });

  it("rejects a non-positive step count or learning rate", () => {
    const z = tm({ w: [0] });
    expect(() => scaffoldControlUpdate(z, z, z, z, 0, 0.1)).toThrow(/localSteps/);
    expect(() => scaffoldControlUpdate(z, z, z, z, 3, 0)).toThrow(/lr/);
  });
});

describe("SCAFFOLD server", () => {
  const upd = (clientId: string, w: number[], dc: number[]): ClientUpdate => ({
    clientId,
    weights: tm({ w }),
    numExamples: 10,
    controlDelta: tm({ w: dc }),
  });

  it("x += eta_g mean(dy), c += (|S|/N) mean(dc) (hand-computed, two rounds)", () => {
    const s = new Scaffold({ totalClients: 4, serverLr: 0.5 });
    const r0 = s.begin({ round: 0, global: tm({ w: [1, 2] }) });
    expect(vals(r0.broadcast.controlVariate!, "w")).toEqual([0, 0]);
    r0.add(upd("a", [2, 2], [1, 0]));
    r0.add(upd("b", [0, 4], [3, 4]));
    const res0 = r0.finish();
    // dy: [1,0], [−1,2] → mean [0,1];  x = [1,2] + 0.5·[0,1]
    expect(vals(res0.global, "w")).toEqual([1, 2.5]);
    // c = 0 + (2/4)·mean([1,0],[3,4]) = 0.5·[2,2]
    expect(vals(res0.controlVariate!, "w")).toEqual([1, 1]);

    const r1 = s.begin({ round: 1, global: res0.global });
    expect(vals(r1.broadcast.controlVariate!, "w")).toEqual([1, 1]);
    r1.add(upd("c", [3, 2.5], [-2, 2]));
    const res1 = r1.finish();
    expect(vals(res1.global, "w")).toEqual([2, 2.5]); // [1,2.5] + 0.5·[2,0]
    expect(vals(res1.controlVariate!, "w")).toEqual([0.5, 1.5]); // [1,1] + (1/4)·[−2,2]
  });

  it("requires controlDelta and at most totalClients updates", () => {
    const s = new Scaffold({ totalClients: 1 });
    const r = s.begin({ round: 0, global: tm({ w: [0] }) });
    expect(() => r.add({ clientId: "a", weights: tm({ w: [1] }), numExamples: 1 })).toThrow(
      expect.objectContaining({ code: "UPDATE_MISSING_CONTROL_DELTA" }),
    );
    r.add(upd("a", [1], [0]));
    r.add(upd("b", [1], [0]));
    expect(() => r.finish()).toThrow(expect.objectContaining({ code: "TOO_MANY_UPDATES" }));
    expect(s.controlVariate()).toBeNull(); // nothing committed
  });

  it("a superseded round cannot commit its control variate", () => {
    const s = new Scaffold({ totalClients: 2 });
    const old = s.begin({ round: 0, global: tm({ w: [0] }) });
    old.add(upd("a", [1], [5]));
    const fresh = s.begin({ round: 1, global: tm({ w: [0] }) });
    expect(() => old.finish()).toThrow(AggregationError);
    fresh.add(upd("a", [1], [2]));
    expect(vals(fresh.finish().controlVariate!, "w")).toEqual([1]);
  });
});

/**
 * Client drift on heterogeneous quadratics f_i(w) = ½ h_i (w − a_i)², whose global optimum is
 * Σ h_i a_i / Σ h_i. With K local steps FedAvg converges to a biased point (closed form below);
 * SCAFFOLD's corrections remove the bias and FedProx shrinks it. Exercises the client helpers and
 * the server together, as the training loop will call them.
 */
describe("client drift on heterogeneous quadratics", () => {
  const h = [1, 10];
  const a = [0, 1];
  const lr = 0.05;
  const K = 10;
  const optimum = (h[0] * a[0] + h[1] * a[1]) / (h[0] + h[1]);

  function run(strategy: Strategy, rounds: number, mode: "plain" | "prox" | "scaffold", mu = 0): number {
    let x = tm({ w: [0.5] });
    const ci = [initialControlVariate(x), initialControlVariate(x)];
    let c = initialControlVariate(x);
    for (let round = 0; round < rounds; round++) {
      const agg = strategy.begin({ round, global: x });
      if (mode === "scaffold") c = agg.broadcast.controlVariate!;
      for (let i = 0; i < 2; i++) {
        const y = tm({ w: [...x.get("w")!.data] });
        for (let k = 0; k < K; k++) {
          const g = tm({ w: [h[i] * (y.get("w")!.data[0] - a[i])] });
          if (mode === "prox") proximalGradient(g, y, x, mu);
          if (mode === "scaffold") scaffoldCorrectGradient(g, c, ci[i]);
          y.get("w")!.data[0] -= lr * g.get("w")!.data[0];
        }
        let controlDelta: TensorMap | undefined;
        if (mode === "scaffold") {
          const u = scaffoldControlUpdate(ci[i], c, x, y, K, lr);
          ci[i] = u.controlVariate;
          controlDelta = u.controlDelta;
        }
        agg.add({ clientId: `c${i}`, weights: y, numExamples: 1, controlDelta });
      }
      x = agg.finish().global;
    }
    return x.get("w")!.data[0];
  }

  it("SCAFFOLD reaches the optimum where FedAvg stalls at its biased fixed point", () => {
    const r = h.map((hi) => (1 - lr * hi) ** K);
    const fedAvgFixedPoint = (a[0] * (1 - r[0]) + a[1] * (1 - r[1])) / (2 - r[0] - r[1]);
    const fedavg = run(new FedAvg(), 300, "plain");
    const prox = run(new FedAvg(), 300, "prox", 1);
    const scaffold = run(new Scaffold({ totalClients: 2 }), 300, "scaffold");
    expect(Math.abs(fedavg - fedAvgFixedPoint)).toBeLessThan(1e-5);
    expect(Math.abs(fedavg - optimum)).toBeGreaterThan(0.1);
    expect(Math.abs(scaffold - optimum)).toBeLessThan(1e-4);
    expect(Math.abs(prox - optimum)).toBeLessThan(Math.abs(fedavg - optimum));
  });
});
