import { describe, expect, it } from "vitest";
import { breastCancerModelFile, breastCancerRows } from "../../test/support/inference.js";
import { decodeModelFile, encodeModelFile, MODEL_FILE_KEYS } from "../model/model-file.js";
import { parseSafetensors, serializeSafetensors } from "../model/safetensors.js";
import { Predictor } from "./predictor.js";

/** The MLP written out by hand in float64: relu(x W0ᵀ + b0) W2ᵀ + b2, then softmax. */
function handForward(p: Predictor, raw: number[]): number[] {
  const w = p.model.weights;
  const st = p.model.standardizer!;
  const x = raw.map((v, j) => (v - st.mean[j]) / st.std[j]);
  const [w0, b0, w2, b2] = ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"].map((n) =>
    w.get(n)!,
  );
  const hidden = w0.shape[0];
  const h = Array.from({ length: hidden }, (_, i) =>
    Math.max(0, b0.data[i] + x.reduce((s, v, j) => s + v * w0.data[i * x.length + j], 0)),
  );
  const z = [0, 1].map((c) => b2.data[c] + h.reduce((s, v, i) => s + v * w2.data[c * hidden + i], 0));
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  return e.map((v) => v / (e[0] + e[1]));
}

describe("Predictor on a model file", () => {
  it("gives the probabilities of a hand-written forward pass of the same weights", async () => {
    const p = new Predictor(decodeModelFile(await breastCancerModelFile()));
    const text = breastCancerRows(10);
    const got = await p.predictCsv(Buffer.from(text));
    const rows = text
      .trim()
      .split("\n")
      .slice(1)
      .map((l) => l.split(",").slice(0, 30).map(Number));
    rows.forEach((r, i) => {
      const want = handForward(p, r);
      expect(got[i].probabilities[0]).toBeCloseTo(want[0], 5);
      expect(got[i].probabilities[1]).toBeCloseTo(want[1], 5);
      expect(got[i].label).toBe(want[1] > want[0] ? "benign" : "malignant");
    });
  });

  it("reads rows with or without the label column, and refuses a row by number and column only", async () => {
    const p = new Predictor(decodeModelFile(await breastCancerModelFile()));
    const withLabel = await p.predictCsv(Buffer.from(breastCancerRows(5)));
    const without = await p.predictCsv(Buffer.from(breastCancerRows(5, { dropLabel: true })));
    expect(without).toEqual(withLabel);
    const garbledLabel = breastCancerRows(5).replace(",malignant\n", ",not-a-class\n");
    expect(await p.predictCsv(Buffer.from(garbledLabel))).toEqual(withLabel);
    const bad = breastCancerRows(3).replace(/\n17\.99,/, "\n-17.99,");
    await expect(p.predictCsv(Buffer.from(bad))).rejects.toMatchObject({
      code: "DATASET_SCHEMA_VIOLATION",
      message: expect.stringMatching(/row 1.*mean_radius.*below the declared minimum/),
    });
    await expect(p.predictCsv(Buffer.from(bad))).rejects.not.toMatchObject({
      message: expect.stringMatching(/17\.99/),
    });
  });

  it("refuses a model file without its spec, or whose schema and spec disagree, naming the field", async () => {
    const bytes = await breastCancerModelFile();
    const { tensors, metadata } = parseSafetensors(bytes);
    const { [MODEL_FILE_KEYS.spec]: _spec, ...noSpec } = metadata;
    expect(() => decodeModelFile(serializeSafetensors(tensors, noSpec))).toThrow(
      /coreason\.model_spec: is missing/,
    );
    const m = decodeModelFile(bytes);
    const threeClasses = { ...m.schema, label: { ...m.schema.label, classes: ["a", "b", "c"] } };
    expect(() => decodeModelFile(encodeModelFile({ ...m, schema: threeClasses }))).toThrow();
    const shortScaler = { mean: m.standardizer!.mean.slice(1), std: m.standardizer!.std.slice(1) };
    expect(() => decodeModelFile(encodeModelFile({ ...m, standardizer: shortScaler }))).toThrow(
      /standardizer must have 30 entries/,
    );
  });
});
