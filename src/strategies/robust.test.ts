import { describe, expect, it } from "vitest";
import { SeededRandom } from "../random.js";
import { tensor, type TensorMap } from "../tensor/tensor.js";
import { CoordinateMedian } from "./coordinate-median.js";
import { Krum } from "./krum.js";
import { TrimmedMean } from "./trimmed-mean.js";
import type { Strategy } from "./types.js";

const tm = (o: Record<string, number[]>): TensorMap =>
  new Map(Object.entries(o).map(([k, v]) => [k, tensor([v.length], Float32Array.from(v))]));
const vals = (m: TensorMap, k: string): number[] => [...m.get(k)!.data];

function aggregate(s: Strategy, clients: Array<[string, number[]]>, round = 0) {
  const agg = s.begin({ round, global: tm({ w: clients[0][1].map(() => 0) }) });
  for (const [id, w] of clients) agg.add({ clientId: id, weights: tm({ w }), numExamples: 1 });
  return agg.finish();
}

describe("coordinate-wise median", () => {
  it("odd count: the middle value per coordinate, outliers ignored", () => {
    const r = aggregate(new CoordinateMedian(), [
      ["a", [1, 10, -1]],
      ["b", [5, 1e6, -3]],
      ["c", [3, 20, -2]],
    ]);
    expect(vals(r.global, "w")).toEqual([3, 20, -2]);
  });

  it("even count: the mean of the two middle values", () => {
    const r = aggregate(new CoordinateMedian(), [
      ["a", [1, 0]],
      ["b", [100, 7]],
      ["c", [2, -1e9]],
      ["d", [3, 8]],
    ]);
    expect(vals(r.global, "w")).toEqual([2.5, 3.5]);
  });

  it("ignores numExamples (an inflated count cannot buy influence)", () => {
    const s = new CoordinateMedian();
    const agg = s.begin({ round: 0, global: tm({ w: [0] }) });
    agg.add({ clientId: "a", weights: tm({ w: [1] }), numExamples: 1 });
    agg.add({ clientId: "b", weights: tm({ w: [2] }), numExamples: 1 });
    agg.add({ clientId: "evil", weights: tm({ w: [1000] }), numExamples: 1_000_000 });
    expect(vals(agg.finish().global, "w")).toEqual([2]);
  });
});

describe("trimmed mean", () => {
  it("drops floor(beta n) values at each end (hand-computed)", () => {
    // n=5, β=0.2 → k=1: mean of the middle three
    const r = aggregate(new TrimmedMean({ beta: 0.2 }), [
      ["a", [-100, 4]],
      ["b", [1, 4]],
      ["c", [2, 5]],
      ["d", [3, 6]],
      ["e", [100, 1e7]],
    ]);
    expect(vals(r.global, "w")).toEqual([2, 5]);
  });

  it("n=4, beta=0.25 trims one each side; beta=0 is the plain mean", () => {
    const clients: Array<[string, number[]]> = [
      ["a", [0]],
      ["b", [1]],
      ["c", [3]],
      ["d", [50]],
    ];
    expect(vals(aggregate(new TrimmedMean({ beta: 0.25 }), clients).global, "w")).toEqual([2]);
    expect(vals(aggregate(new TrimmedMean({ beta: 0 }), clients).global, "w")).toEqual([13.5]);
    // 0.29 · 100 = 28.999…: still trims 29 per side (41 values remain)
    const many: Array<[string, number[]]> = Array.from({ length: 100 }, (_, i) => [
      `c${String(i).padStart(3, "0")}`,
      [i],
    ]);
    expect(vals(aggregate(new TrimmedMean({ beta: 0.29 }), many).global, "w")).toEqual([49.5]);
  });

  it("rejects beta outside [0, 0.5)", () => {
    expect(() => new TrimmedMean({ beta: 0.5 })).toThrow(/beta/);
    expect(() => new TrimmedMean({ beta: -0.1 })).toThrow(/beta/);
  });
});

describe("Krum", () => {
  // 1-D values 0, 1, 2, 10, 20 with f=1: each score sums the n−f−2 = 2 smallest squared distances.
  // a(0): 1+4=5  b(1): 1+1=2  c(2): 1+4=5  d(10): 64+81=145  e(20): 100+324=424
  const line: Array<[string, number[]]> = [
    ["a", [0]],
    ["b", [1]],
    ["c", [2]],
    ["d", [10]],
    ["e", [20]],
  ];

  it("picks the lowest-score update (hand-computed)", () => {
    const r = aggregate(new Krum({ byzantine: 1 }), line);
    expect(r.selectedClients).toEqual(["b"]);
    expect(vals(r.global, "w")).toEqual([1]);
  });

  it("Multi-Krum averages the m best; ties go to the smaller client id", () => {
    const r3 = aggregate(new Krum({ byzantine: 1, multiKrum: 3 }), line);
    expect(r3.selectedClients).toEqual(["b", "a", "c"]);
    expect(vals(r3.global, "w")).toEqual([1]);
    const r2 = aggregate(new Krum({ byzantine: 1, multiKrum: 2 }), line);
    expect(r2.selectedClients).toEqual(["b", "a"]);
    expect(vals(r2.global, "w")).toEqual([0.5]);
  });

  it("selects an honest update with Byzantine outliers present, whatever the arrival order", () => {
    const rng = new SeededRandom("krum");
    const honest: Array<[string, number[]]> = Array.from({ length: 6 }, (_, i) => [
      `h${i}`,
      Array.from({ length: 8 }, () => 1 + (rng.uniform() - 0.5) * 0.1),
    ]);
    const byzantine: Array<[string, number[]]> = [
      ["z0", Array.from({ length: 8 }, () => 100)],
      ["z1", Array.from({ length: 8 }, (_, j) => (j % 2 ? -50 : 50))],
    ];
    const all = [...honest, ...byzantine];
    const r = aggregate(new Krum({ byzantine: 2 }), all);
    expect(r.selectedClients![0]).toMatch(/^h/);
    const chosen = honest.find(([id]) => id === r.selectedClients![0])![1];
    expect(vals(r.global, "w")).toEqual(chosen.map(Math.fround));
    const reversed = aggregate(new Krum({ byzantine: 2 }), [...all].reverse());
    expect(reversed.selectedClients).toEqual(r.selectedClients);
    // Multi-Krum with m = n − f keeps only honest updates
    const multi = aggregate(new Krum({ byzantine: 2, multiKrum: 6 }), all);
    expect(multi.selectedClients!.every((id) => id.startsWith("h"))).toBe(true);
  });

  it("needs n >= 2f + 3; the round can be finished once enough updates arrive", () => {
    const s = new Krum({ byzantine: 1 });
    const agg = s.begin({ round: 0, global: tm({ w: [0] }) });
    for (const [id, w] of line.slice(0, 4)) agg.add({ clientId: id, weights: tm({ w }), numExamples: 1 });
    expect(() => agg.finish()).toThrow(expect.objectContaining({ code: "TOO_FEW_UPDATES" }));
    agg.add({ clientId: "e", weights: tm({ w: [20] }), numExamples: 1 });
    expect(agg.finish().selectedClients).toEqual(["b"]);
  });
});
