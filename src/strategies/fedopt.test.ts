import { describe, expect, it } from "vitest";
import { SeededRandom } from "../random.js";
import { tensor, type TensorMap } from "../tensor/tensor.js";
import { FedAdam, FedYogi } from "./fedopt.js";
import type { Strategy } from "./types.js";

const tm = (o: Record<string, number[]>): TensorMap =>
  new Map(Object.entries(o).map(([k, v]) => [k, tensor([v.length], Float32Array.from(v))]));
const vals = (m: TensorMap, k: string): number[] => [...m.get(k)!.data];

/** One round where the clients' mean sits exactly `delta` away from x (two clients, ±spread). */
function round(s: Strategy, r: number, x: TensorMap, delta: number[]): TensorMap {
  const agg = s.begin({ round: r, global: x });
  const xs = vals(x, "w");
  agg.add({ clientId: "a", weights: tm({ w: xs.map((v, i) => v + delta[i] + 0.25) }), numExamples: 5 });
  agg.add({ clientId: "b", weights: tm({ w: xs.map((v, i) => v + delta[i] - 0.25) }), numExamples: 1 });
  return agg.finish().global;
}

describe("FedAdam / FedYogi (Reddi et al. 2021)", () => {
  const opts = { serverLr: 1, beta1: 0.5, beta2: 0.75, tau: 0.5 };

  it("FedAdam, two steps (hand-computed)", () => {
    const s = new FedAdam(opts);
    // Δ=2: m = 0.5·2 = 1; v = 0.75·τ² + 0.25·4 = 1.1875; x += 1/(√1.1875 + 0.5)
    const x1 = round(s, 0, tm({ w: [1] }), [2]);
    expect(vals(x1, "w")[0]).toBeCloseTo(1 + 1 / (Math.sqrt(1.1875) + 0.5), 6);
    expect(vals(x1, "w")[0]).toBeCloseTo(1.629037, 5);
    // Δ=1: m = 0.5·1 + 0.5·1 = 1; v = 0.75·1.1875 + 0.25·1 = 1.140625
    const x2 = round(s, 1, x1, [1]);
    expect(vals(x2, "w")[0] - vals(x1, "w")[0]).toBeCloseTo(1 / (Math.sqrt(1.140625) + 0.5), 5);
  });

  it("FedYogi, two steps (hand-computed)", () => {
    const s = new FedYogi(opts);
    // Δ=2: v = τ² − 0.25·4·sign(0.25 − 4) = 1.25; x += 1/(√1.25 + 0.5) = 1/φ
    const x1 = round(s, 0, tm({ w: [1] }), [2]);
    expect(vals(x1, "w")[0]).toBeCloseTo(1 + 0.6180339887, 6);
    // Δ=1: m = 1; v = 1.25 − 0.25·1·sign(1.25 − 1) = 1; x += 1/(1 + 0.5)
    const x2 = round(s, 1, x1, [1]);
    expect(vals(x2, "w")[0] - vals(x1, "w")[0]).toBeCloseTo(2 / 3, 5);
  });

  it("Adam and Yogi second moments part ways when v > Δ² (hand-computed)", () => {
    // Yogi subtracts (1−β2)Δ² from v; Adam decays v towards Δ².
    const adam = new FedAdam({ ...opts, beta1: 0 });
    const yogi = new FedYogi({ ...opts, beta1: 0 });
    const x = tm({ w: [0] });
    round(adam, 0, x, [4]);
    round(yogi, 0, x, [4]);
    // second step Δ = 0.5: Adam v = 0.75·(0.1875 + 4) + 0.25·0.25; Yogi v = (0.25 + 4) − 0.25·0.25
    const vAdam = 0.75 * (0.75 * 0.25 + 0.25 * 16) + 0.25 * 0.25;
    const vYogi = 0.25 + 0.25 * 16 - 0.25 * 0.25;
    const xa = round(adam, 1, tm({ w: [0] }), [0.5]);
    const xy = round(yogi, 1, tm({ w: [0] }), [0.5]);
    expect(vals(xa, "w")[0]).toBeCloseTo(0.5 / (Math.sqrt(vAdam) + 0.5), 5);
    expect(vals(xy, "w")[0]).toBeCloseTo(0.5 / (Math.sqrt(vYogi) + 0.5), 5);
  });

  for (const rule of ["adam", "yogi"] as const) {
    it(`${rule}: three rounds on random updates match an independent float64 reference`, () => {
      const p = { serverLr: 0.03, beta1: 0.9, beta2: 0.99, tau: 1e-3 };
      const s = rule === "adam" ? new FedAdam(p) : new FedYogi(p);
      const rng = new SeededRandom(`fedopt-${rule}`);
      const d = 40;
      let x = Array.from({ length: d }, () => Math.fround(rng.uniform() - 0.5));
      const m = new Array<number>(d).fill(0);
      const v = new Array<number>(d).fill(p.tau * p.tau);
      let global = tm({ w: x });
      for (let r = 0; r < 3; r++) {
        const clients = Array.from({ length: 3 }, () =>
          x.map((xi) => Math.fround(xi + (rng.uniform() - 0.5) * 0.2)),
        );
        const agg = s.begin({ round: r, global });
        clients.forEach((y, i) => agg.add({ clientId: `c${i}`, weights: tm({ w: y }), numExamples: 1 + i }));
        global = agg.finish().global;
        x = x.map((xi, j) => {
          const delta = (clients[0][j] + clients[1][j] + clients[2][j]) / 3 - xi; // uniform mean
          m[j] = p.beta1 * m[j] + (1 - p.beta1) * delta;
          v[j] =
            rule === "adam"
              ? p.beta2 * v[j] + (1 - p.beta2) * delta * delta
              : v[j] - (1 - p.beta2) * delta * delta * Math.sign(v[j] - delta * delta);
          return xi + (p.serverLr * m[j]) / (Math.sqrt(v[j]) + p.tau);
        });
        const got = vals(global, "w");
        x.forEach((want, j) => expect(Math.abs(got[j] - want)).toBeLessThan(2e-6));
        x = got; // continue from the float32 model both sides see
      }
    });
  }

  it("state survives export and restore (restart between rounds)", () => {
    const a = new FedYogi(opts);
    const b = new FedYogi(opts);
    const x1 = round(a, 0, tm({ w: [1, 2] }), [2, -1]);
    b.restoreState(a.exportState());
    expect(b.exportState().round).toBe(0);
    expect([...b.exportState().tensors.keys()].sort()).toEqual(["m/w", "v/w"]);
    const fromA = vals(round(a, 1, x1, [1, 1]), "w");
    expect(vals(round(b, 1, x1, [1, 1]), "w")).toEqual(fromA);
    // and a fresh strategy gives something else: the restored state mattered
    expect(vals(round(new FedYogi(opts), 1, x1, [1, 1]), "w")).not.toEqual(fromA);
  });

  it("rejects a state whose layout does not match the model, or a negative v", () => {
    const a = new FedAdam(opts);
    round(a, 0, tm({ w: [1, 2] }), [1, 1]);
    expect(() => round(a, 1, tm({ w: [1, 2, 3] }), [1, 1, 1])).toThrow(
      expect.objectContaining({ code: "STATE_INVALID" }),
    );
    const bad = new Map([
      ["m/w", tensor([1], Float32Array.from([0]))],
      ["v/w", tensor([1], Float32Array.from([-1]))],
    ]);
    expect(() => new FedAdam(opts).restoreState({ round: 0, tensors: bad })).toThrow(
      expect.objectContaining({ code: "STATE_INVALID" }),
    );
  });
});
