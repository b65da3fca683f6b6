import { describe, expect, it } from "vitest";
import { tensor, type TensorMap } from "../tensor/tensor.js";
import { Airlock } from "./airlock.js";

const CANARY = "CANARY-7f3a-patient-Jane-Doe-1975";

function model(): TensorMap {
  return new Map([
    ["layers.0.weight", tensor([2, 3])],
    ["layers.0.bias", tensor([2])],
  ]);
}

describe("Airlock", () => {
  it("lets exactly the model's tensors and whitelisted finite metrics through", () => {
    const w = model();
    w.get("layers.0.bias")!.data.set([1, 2]);
    const out = new Airlock(model()).sanitize({
      tensors: w,
      metrics: { loss: 0.5, accuracy: 0.9, examples: 10, epsilon: 1.2 },
    });
    expect(out.dropped).toEqual([]);
    expect([...out.tensors.keys()]).toEqual(["layers.0.weight", "layers.0.bias"]);
    expect([...out.tensors.get("layers.0.bias")!.data]).toEqual([1, 2]);
    expect(out.metrics).toEqual({ loss: 0.5, accuracy: 0.9, examples: 10, epsilon: 1.2 });
  });

  it("copies tensors, so later mutation of the agent's buffers cannot leak through", () => {
    const w = model();
    const out = new Airlock(model()).sanitize({ tensors: w });
    w.get("layers.0.bias")!.data[0] = 42;
    expect(out.tensors.get("layers.0.bias")!.data[0]).toBe(0);
  });

  it("drops and records everything else, without ever echoing a value", () => {
    const w = model();
    const bad = {
      tensors: {
        "layers.0.weight": { shape: [3, 2], data: new Float32Array(6) }, // wrong shape
        "layers.0.bias": { shape: [2], data: Float32Array.from([NaN, 1]) }, // non-finite
        [`extra.${CANARY}`]: { shape: [1], data: new Float32Array(1) }, // not in the model
      },
      metrics: { loss: Infinity, accuracy: CANARY, notes: 3, epsilon: 1 },
      raw_rows: [CANARY],
    };
    const out = new Airlock(w).sanitize(bad);
    expect(out.tensors.size).toBe(0);
    expect(out.metrics).toEqual({ epsilon: 1 });
    const reasons = out.dropped.map((d) => `${d.key}: ${d.reason}`);
    expect(reasons).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^<unknown key sha256:[0-9a-f]{16}>: field not allowed out of the airlock$/),
        expect.stringMatching(/^<unknown key sha256:[0-9a-f]{16}>: tensor is not part of the job's model$/),
        expect.stringMatching(/^<unknown key sha256:[0-9a-f]{16}>: metric is not whitelisted$/),
        "layers.0.weight: shape does not match the model's [2, 3]",
        "layers.0.bias: contains non-finite values",
        "loss: metric is not a finite number",
        "accuracy: metric is not a finite number",
      ]),
    );
    expect(JSON.stringify(out)).not.toContain(CANARY);
    expect(JSON.stringify(out)).not.toContain("raw_rows");
  });

  it("rejects float64 and plain arrays as the wrong dtype", () => {
    const out = new Airlock(model()).sanitize({
      tensors: {
        "layers.0.weight": { shape: [2, 3], data: new Float64Array(6) },
        "layers.0.bias": { shape: [2], data: [0, 0] },
      },
    });
    expect(out.tensors.size).toBe(0);
    expect(out.dropped.filter((d) => d.reason === "dtype is not float32")).toHaveLength(2);
  });
});
