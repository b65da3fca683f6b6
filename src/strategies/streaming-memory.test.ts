import { runInNewContext } from "node:vm";
import { setFlagsFromString } from "node:v8";
import { describe, expect, it } from "vitest";
import { tensor, type TensorMap } from "../tensor/tensor.js";
import { CoordinateMedian } from "./coordinate-median.js";
import { FedAvg } from "./fedavg.js";
import type { ClientUpdate, RoundAggregator } from "./types.js";

/** A real collector, so retained memory is measured rather than guessed from allocation timing. */
function obtainGc(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

const ROWS = 1000;
const COLS = 1000; // ~1M parameters: 4 MB per float32 model
const MODEL_BYTES = (ROWS * COLS + COLS) * 4;

function makeModel(value: number): TensorMap {
  const w = new Float32Array(ROWS * COLS).fill(value);
  w[12345] = -value; // one distinct coordinate, checked below
  return new Map([
    ["w", tensor([ROWS, COLS], w)],
    ["b", tensor([COLS], new Float32Array(COLS).fill(value / 2))],
  ]);
}

describe("streaming aggregation memory", () => {
  const gc = obtainGc();
  const retained = (): number => {
    gc();
    gc();
    const m = process.memoryUsage();
    return m.arrayBuffers + m.heapUsed;
  };

  /** Feed `n` freshly generated updates one at a time, dropping each after add; max growth seen. */
  function feed(agg: RoundAggregator, n: number, checkEvery: number, base: number, limit: number): number {
    let peak = 0;
    for (let i = 0; i < n; i++) {
      const update: ClientUpdate = {
        clientId: `client-${i}`,
        weights: makeModel(i % 7),
        numExamples: 1 + (i % 5),
      };
      agg.add(update);
      if ((i + 1) % checkEvery === 0) {
        peak = Math.max(peak, retained() - base);
        if (peak > limit) return peak; // stop early instead of exhausting memory
      }
    }
    return peak;
  }

  it("FedAvg over 200 updates of a 1M-parameter model retains O(model), not O(clients x model)", () => {
    const global = makeModel(0);
    const base = retained();
    const agg = new FedAvg().begin({ round: 0, global });
    // Live at each check: the float64 accumulator (2 models' worth) and the update just added (1).
    // Measured ~3 models; allow 5. Holding the updates would cost up to 200.
    const limit = 5 * MODEL_BYTES;
    const peak = feed(agg, 200, 20, base, limit);
    expect(peak).toBeLessThan(limit);
    const r = agg.finish();
    // Σ n_i v_i / Σ n_i with v_i = i mod 7, n_i = 1 + i mod 5 (the pattern repeats every 35 clients)
    let num = 0;
    let den = 0;
    for (let i = 0; i < 200; i++) {
      num += (1 + (i % 5)) * (i % 7);
      den += 1 + (i % 5);
    }
    expect(r.global.get("w")!.data[0]).toBeCloseTo(num / den, 5);
    expect(r.global.get("w")!.data[12345]).toBeCloseTo(-num / den, 5);
    expect(r.global.get("b")!.data[999]).toBeCloseTo(num / den / 2, 5);
  });

  it("the measurement does see retention: coordinate median holds every update", () => {
    const global = makeModel(0);
    const base = retained();
    const agg = new CoordinateMedian().begin({ round: 0, global });
    const peak = feed(agg, 12, 12, base, Infinity);
    expect(peak).toBeGreaterThan(10 * MODEL_BYTES);
    expect(agg.count).toBe(12);
  });
});
