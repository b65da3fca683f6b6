import { describe, expect, it } from "vitest";
import { SeededRandom } from "../random.js";
import { tensor, type TensorMap } from "../tensor/tensor.js";
import { FedAvg } from "./fedavg.js";
import { fedProxGradientHook, FedProx, proximalGradient, proximalLoss } from "./fedprox.js";
import type { ClientUpdate } from "./types.js";

const tm = (o: Record<string, number[]>): TensorMap =>
  new Map(Object.entries(o).map(([k, v]) => [k, tensor([v.length], Float32Array.from(v))]));
const vals = (m: TensorMap, k: string): number[] => [...m.get(k)!.data];
const upd = (clientId: string, weights: TensorMap, numExamples: number, metrics?: Record<string, number>) =>
  ({ clientId, weights, numExamples, metrics }) as ClientUpdate;

describe("FedAvg", () => {
  const x = tm({ w: [0, 0, 0], b: [1] });
  const a = tm({ w: [1, 2, 3], b: [2] });
  const b = tm({ w: [5, 6, 7], b: [0] });

  it("weights client models by numExamples (hand-computed)", () => {
    const agg = new FedAvg().begin({ round: 0, global: x });
    agg.add(upd("a", a, 1, { loss: 1, acc: 0.5 }));
    agg.add(upd("b", b, 3, { loss: 2 }));
    const r = agg.finish();
    // w = (1·[1,2,3] + 3·[5,6,7]) / 4,  b = (1·2 + 3·0) / 4
    expect(vals(r.global, "w")).toEqual([4, 5, 6]);
    expect(vals(r.global, "b")).toEqual([0.5]);
    expect(r.totalExamples).toBe(4);
    expect(r.clients).toEqual(["a", "b"]);
    expect(r.metrics.loss).toBeCloseTo((1 * 1 + 3 * 2) / 4, 12);
    expect(r.metrics.acc).toBeCloseTo(0.5, 12); // only a reported it
    expect(vals(x, "w")).toEqual([0, 0, 0]); // the input global is untouched
  });

  it("uniform weighting averages models equally", () => {
    const agg = new FedAvg({ weighting: "uniform" }).begin({ round: 0, global: x });
    agg.add(upd("a", a, 1));
    agg.add(upd("b", b, 3));
    const r = agg.finish();
    expect(vals(r.global, "w")).toEqual([3, 4, 5]);
    expect(vals(r.global, "b")).toEqual([1]);
  });

  it("matches an independent float64 weighted mean on random updates", () => {
    const rng = new SeededRandom("fedavg-random");
    const d = 50;
    const global = tm({ p: Array.from({ length: d }, () => rng.uniform() * 2 - 1) });
    const clients = Array.from({ length: 7 }, (_, i) => ({
      y: Array.from({ length: d }, () => Math.fround(rng.uniform() * 4 - 2)),
      n: 1 + Math.floor(rng.uniform() * 100) + i,
    }));
    const agg = new FedAvg().begin({ round: 3, global });
    clients.forEach((c, i) => agg.add(upd(`c${i}`, tm({ p: c.y }), c.n)));
    const got = vals(agg.finish().global, "p");
    const total = clients.reduce((s, c) => s + c.n, 0);
    for (let j = 0; j < d; j++) {
      const want = clients.reduce((s, c) => s + c.n * c.y[j], 0) / total;
      expect(Math.abs(got[j] - want)).toBeLessThan(1e-6);
    }
  });
});

describe("FedProx", () => {
  it("server side is the weighted mean and broadcasts mu", () => {
    const s = new FedProx({ mu: 0.25 });
    const agg = s.begin({ round: 0, global: tm({ w: [0, 0] }) });
    expect(agg.broadcast.proximalMu).toBe(0.25);
    agg.add(upd("a", tm({ w: [2, 4] }), 3));
    agg.add(upd("b", tm({ w: [6, 0] }), 1));
    expect(vals(agg.finish().global, "w")).toEqual([3, 3]); // (3·[2,4] + [6,0]) / 4
  });

  it("proximalGradient adds mu (w - x) in place (hand-computed)", () => {
    const grad = tm({ w: [1, 1], b: [-2] });
    const w = tm({ w: [2, 0], b: [0.5] });
    const x = tm({ w: [1, 1], b: [1.5] });
    const out = proximalGradient(grad, w, x, 0.5);
    expect(out).toBe(grad);
    expect(vals(grad, "w")).toEqual([1.5, 0.5]);
    expect(vals(grad, "b")).toEqual([-2.5]);
    // mu/2 ‖w − x‖² = 0.25 · (1 + 1 + 1)
    expect(proximalLoss(w, x, 0.5)).toBeCloseTo(0.75, 12);
  });

  it("proximalGradient is the derivative of proximalLoss (central differences)", () => {
    const mu = 0.3;
    const w = tm({ w: [0.25, -1.5, 2], b: [0.75] });
    const x = tm({ w: [1, 0.5, -0.25], b: [0] });
    const grad = proximalGradient(tm({ w: [0, 0, 0], b: [0] }), w, x, mu);
    const h = 1 / 64; // exact in float32 at these magnitudes
    for (const name of ["w", "b"]) {
      const data = w.get(name)!.data;
      for (let i = 0; i < data.length; i++) {
        const orig = data[i];
        data[i] = orig + h;
        const up = proximalLoss(w, x, mu);
        data[i] = orig - h;
        const down = proximalLoss(w, x, mu);
        data[i] = orig;
        expect(grad.get(name)!.data[i]).toBeCloseTo((up - down) / (2 * h), 5);
      }
    }
  });

  it("the gradient hook applies the same correction to trainer parameters each step", () => {
    const x = tm({ "layers.0.weight": [1, 2], "layers.0.bias": [0] });
    const params = [
      { name: "layers.0.weight", data: Float32Array.from([3, 2]), grad: Float32Array.from([0.5, 0.5]) },
      { name: "layers.0.bias", data: Float32Array.from([-1]), grad: Float32Array.from([0]) },
    ];
    const hook = fedProxGradientHook(x, 0.1);
    hook(params);
    expect([...params[0].grad]).toEqual([Math.fround(0.5 + 0.1 * 2), 0.5]);
    expect([...params[1].grad]).toEqual([Math.fround(-0.1)]);
    const wrong = [{ name: "other", data: new Float32Array(2), grad: new Float32Array(2) }, params[1]];
    expect(() => hook(wrong)).toThrow(/missing/);
    expect(() => fedProxGradientHook(x, -1)).toThrow(/mu/);
  });
});
