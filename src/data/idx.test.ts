import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DatasetError } from "./dataset-error.js";
import { classCounts } from "./dataset.js";
import { FASHION_MNIST_CLASSES, fashionMnistCandidates, findFashionMnist, loadFashionMnist } from "./fashion-mnist.js";
import { idxToDataset, parseIdx } from "./idx.js";
import { loadDataset } from "./load.js";

/** Hand-assembled IDX bytes: 00 00 08 rank, big-endian uint32 dims, then the payload. */
function idx(dims: number[], payload: number[]): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(payload)]);
}

// Three 2x2 images and their labels.
const PIXELS = [0, 255, 51, 102, 10, 20, 30, 40, 255, 255, 0, 0];
const images = idx([3, 2, 2], PIXELS);
const labels = idx([3], [2, 0, 1]);

function refused(f: () => unknown, code: string, rule?: RegExp): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(DatasetError);
  expect((err as DatasetError).code).toBe(code);
  if (rule) expect((err as DatasetError).message).toMatch(rule);
}

describe("IDX parsing", () => {
  it("reads the big-endian header exactly as written", () => {
    expect(images.subarray(0, 8)).toEqual(Buffer.from([0, 0, 8, 3, 0, 0, 0, 3]));
    const a = parseIdx(images, 3, "img");
    expect(a.dims).toEqual([3, 2, 2]);
    expect(Array.from(a.data)).toEqual(PIXELS);
    expect(parseIdx(idx([70000], new Array(70000).fill(1)), 1, "l").dims).toEqual([70000]);
  });

  it("builds a dataset with pixels scaled to [0, 1]", () => {
    const ds = idxToDataset(images, labels, "img", { classNames: ["a", "b", "c"] });
    expect(ds.rows).toBe(3);
    expect(ds.numFeatures).toBe(4);
    expect(Array.from(ds.features)).toEqual(PIXELS.map((p) => Math.fround(p / 255)));
    expect(ds.features[1]).toBe(1);
    expect(ds.features[2]).toBeCloseTo(0.2, 7);
    expect(Array.from(ds.labels)).toEqual([2, 0, 1]);
    expect(ds.featureNames).toEqual(["pixel_0", "pixel_1", "pixel_2", "pixel_3"]);
  });

  it.each([
    ["labels magic for images", () => parseIdx(labels, 3, "x"), /0x00000803/],
    ["a signed-byte element type", () => parseIdx(Buffer.from([0, 0, 9, 1, 0, 0, 0, 1, 5]), 1, "x"), /magic/],
    ["a non-zero leading byte", () => parseIdx(Buffer.from([1, 0, 8, 1, 0, 0, 0, 1, 5]), 1, "x"), /magic/],
    ["a truncated header", () => parseIdx(images.subarray(0, 10), 3, "x"), /too short/],
    ["a too-short file", () => parseIdx(Buffer.from([0, 0]), 1, "x"), /too short/],
    ["a truncated payload", () => parseIdx(images.subarray(0, images.length - 1), 3, "x"), /11 bytes, the dimensions declare 12/],
    ["trailing bytes", () => parseIdx(Buffer.concat([labels, Buffer.from([0])]), 1, "x"), /4 bytes, the dimensions declare 3/],
    ["a zero dimension", () => parseIdx(idx([0], []), 1, "x"), /dimension 1/],
    ["a huge dimension", () => parseIdx(idx([0xffffffff], []), 1, "x"), /dimension 1/],
  ])("refuses %s", (_what, f, rule) => refused(f, "DATASET_MALFORMED", rule));

  it("refuses mismatched counts, out-of-range labels and wrong image shapes", () => {
    refused(() => idxToDataset(images, idx([2], [0, 1]), "img", { classNames: ["a", "b", "c"] }), "DATASET_SCHEMA_VIOLATION", /count/);
    refused(() => idxToDataset(images, labels, "img", { classNames: ["a", "b"] }), "DATASET_SCHEMA_VIOLATION", /row 1: label/);
    refused(
      () => idxToDataset(images, labels, "img", { classNames: ["a", "b", "c"], imageShape: [28, 28] }),
      "DATASET_SCHEMA_VIOLATION",
      /2x2, expected 28x28/,
    );
    refused(() => idxToDataset(images, labels, "img", { classNames: ["a", "b", "c"], maxRows: 2 }), "DATASET_SCHEMA_VIOLATION", /max_rows/);
  });
});

describe("IDX through the Sentry (schema file, gzip)", () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "enclave-idx-"));
    writeFileSync(join(root, "imgs-idx3-ubyte.gz"), gzipSync(images));
    writeFileSync(join(root, "labels-idx1-ubyte"), labels);
    writeFileSync(
      join(root, "imgs-idx3-ubyte.schema.json"),
      JSON.stringify({ format: "idx", labels_file: "labels-idx1-ubyte", classes: ["a", "b", "c"] }),
    );
    // Fashion-MNIST-style directory with a raw (not gzipped) test split of the wrong image size.
    writeFileSync(join(root, "t10k-images-idx3-ubyte"), images);
    writeFileSync(join(root, "t10k-labels-idx1-ubyte"), labels);
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("loads an image/label pair named by a schema", async () => {
    const { dataset, source } = await loadDataset(root, "imgs-idx3-ubyte.gz");
    expect(dataset.rows).toBe(3);
    expect(dataset.classNames).toEqual(["a", "b", "c"]);
    expect(source.labelsSha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("enforces a declared image_shape", async () => {
    writeFileSync(
      join(root, "shaped-idx3-ubyte.schema.json"),
      JSON.stringify({ format: "idx", labels_file: "labels-idx1-ubyte", classes: ["a", "b", "c"], image_shape: [28, 28] }),
    );
    writeFileSync(join(root, "shaped-idx3-ubyte"), images);
    await expect(loadDataset(root, "shaped-idx3-ubyte")).rejects.toMatchObject({
      code: "DATASET_SCHEMA_VIOLATION",
      message: expect.stringMatching(/2x2, expected 28x28/),
    });
  });

  it("refuses a labels_file that is not a plain name", async () => {
    writeFileSync(
      join(root, "esc-idx3-ubyte.schema.json"),
      JSON.stringify({ format: "idx", labels_file: "../labels-idx1-ubyte", classes: ["a", "b", "c"] }),
    );
    writeFileSync(join(root, "esc-idx3-ubyte"), images);
    await expect(loadDataset(root, "esc-idx3-ubyte")).rejects.toMatchObject({ code: "DATASET_SCHEMA_INVALID" });
  });

  it("finds the candidate directories in order, env first", () => {
    const c = fashionMnistCandidates({ ENCLAVE_FASHION_MNIST_DIR: "/custom" });
    expect(c[0]).toBe("/custom");
    expect(c[1]).toMatch(/shared\/datasets\/fashion-mnist$/);
    expect(c[2]).toBe("/usr/share/datasets/fashion-mnist");
    expect(fashionMnistCandidates({})).toHaveLength(2);
  });

  it("findFashionMnist takes the env directory when it holds the split", () => {
    expect(findFashionMnist({ env: { ENCLAVE_FASHION_MNIST_DIR: root }, splits: ["test"] })).toBe(root);
  });

  it("checks the 28x28 shape of Fashion-MNIST", async () => {
    await expect(loadFashionMnist(root, "test")).rejects.toMatchObject({ code: "DATASET_SCHEMA_VIOLATION" });
  });
});

const fashionDir = findFashionMnist({ splits: ["test"] });

describe.skipIf(fashionDir === null)("real Fashion-MNIST test split (when present on this machine)", () => {
  it("has 10,000 images of 28x28 in [0, 1], 1,000 per class", async () => {
    const ds = await loadFashionMnist(fashionDir!, "test");
    expect(ds.rows).toBe(10_000);
    expect(ds.numFeatures).toBe(784);
    expect(ds.classNames).toEqual([...FASHION_MNIST_CLASSES]);
    expect(Array.from(classCounts(ds.labels, 10))).toEqual(new Array(10).fill(1000));
    let min = Infinity;
    let max = -Infinity;
    for (const v of ds.features) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    expect([min, max]).toEqual([0, 1]);
    // The first test image is an ankle boot (class 9), as in the published dataset.
    expect(ds.labels[0]).toBe(9);
  });
});
