import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PNG } from "pngjs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DatasetError } from "./dataset-error.js";
import { loadDataset } from "./load.js";

/** A PNG of `w`x`h` RGBA pixels given by rgba(i). */
function png(w: number, h: number, rgba: (i: number) => [number, number, number, number]): Buffer {
  const p = new PNG({ width: w, height: h });
  for (let i = 0; i < w * h; i++) p.data.set(rgba(i), 4 * i);
  return PNG.sync.write(p);
}

function pgm(w: number, h: number, maxval: number, v: (i: number) => number): Buffer {
  const header = Buffer.from(`P5\n# a comment\n${w} ${h}\n${maxval}\n`, "latin1");
  const wide = maxval > 255;
  const body = Buffer.alloc(w * h * (wide ? 2 : 1));
  for (let i = 0; i < w * h; i++) {
    if (wide) body.writeUInt16BE(v(i), 2 * i);
    else body[i] = v(i);
  }
  return Buffer.concat([header, body]);
}

describe("image folders through the Data Sentry", () => {
  let root: string;
  const schema = (o: object = {}) =>
    writeFileSync(
      join(root, "scans.schema.json"),
      JSON.stringify({ format: "image_folder", image_shape: [3, 4], classes: ["benign", "malignant"], ...o }),
    );
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "enclave-imgdir-"));
    mkdirSync(join(root, "scans", "benign"), { recursive: true });
    mkdirSync(join(root, "scans", "malignant"), { recursive: true });
    writeFileSync(join(root, "scans", "benign", "a.png"), png(4, 3, (i) => [i * 10, i * 10, i * 10, 255]));
    writeFileSync(join(root, "scans", "benign", "b.pgm"), pgm(4, 3, 255, (i) => 255 - i));
    writeFileSync(join(root, "scans", "malignant", "c.pgm"), pgm(4, 3, 1000, (i) => i * 80));
    schema();
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("reads PNG and 8- and 16-bit PGM images in class then name order, pixels exact in [0, 1]", async () => {
    const { dataset, source } = await loadDataset(root, "scans");
    expect(dataset.rows).toBe(3);
    expect(dataset.exampleShape).toEqual([1, 3, 4]);
    expect(Array.from(dataset.labels)).toEqual([0, 0, 1]);
    for (let i = 0; i < 12; i++) {
      expect(dataset.features[i]).toBeCloseTo((i * 10) / 255, 7);
      expect(dataset.features[12 + i]).toBeCloseTo((255 - i) / 255, 7);
      expect(dataset.features[24 + i]).toBeCloseTo((i * 80) / 1000, 7);
    }
    expect(source.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("reads RGB as three planes when the schema declares 3 channels", async () => {
    rmSync(join(root, "scans", "benign", "b.pgm"));
    rmSync(join(root, "scans", "malignant", "c.pgm"));
    writeFileSync(join(root, "scans", "malignant", "c.png"), png(4, 3, (i) => [i, 2 * i, 3 * i, 255]));
    schema({ channels: 3 });
    const { dataset } = await loadDataset(root, "scans");
    expect(dataset.exampleShape).toEqual([3, 3, 4]);
    const second = dataset.features.subarray(36, 72);
    expect(second[5]).toBeCloseTo(5 / 255, 7);
    expect(second[12 + 5]).toBeCloseTo(10 / 255, 7);
    expect(second[24 + 5]).toBeCloseTo(15 / 255, 7);
  });

  const refused = async (pattern: RegExp) => {
    const err = await loadDataset(root, "scans").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetError);
    expect((err as Error).message).toMatch(pattern);
  };

  it("refuses a wrong size, a color image at 1 channel, a stray file or folder and a missing class", async () => {
    writeFileSync(join(root, "scans", "benign", "d.png"), png(3, 3, () => [0, 0, 0, 255]));
    await refused(/d\.png.*image is 3x3, expected 3x4/);
    writeFileSync(join(root, "scans", "benign", "d.png"), png(4, 3, (i) => [i, 0, 0, 255]));
    await refused(/image has color; the schema declares 1 channel/);
    rmSync(join(root, "scans", "benign", "d.png"));
    writeFileSync(join(root, "scans", "benign", "notes.txt"), "x");
    await refused(/notes\.txt.*is not a \.png or \.pgm image/);
    rmSync(join(root, "scans", "benign", "notes.txt"));
    mkdirSync(join(root, "scans", "unknown"));
    await refused(/scans\/unknown.*is not a declared class folder/);
    rmSync(join(root, "scans", "unknown"), { recursive: true });
    rmSync(join(root, "scans", "malignant"), { recursive: true });
    await refused(/malignant.*declared class folder is missing/);
  });

  it("refuses malformed PGM and PNG bytes without echoing them", async () => {
    writeFileSync(join(root, "scans", "benign", "b.pgm"), Buffer.from("P5\n4 3\n255\nSECRET"));
    await refused(/PGM payload size differs from its header/);
    writeFileSync(join(root, "scans", "benign", "b.pgm"), pgm(4, 3, 10, () => 11));
    await refused(/PGM sample exceeds maxval/);
    writeFileSync(join(root, "scans", "benign", "b.pgm"), pgm(4, 3, 255, () => 1));
    writeFileSync(join(root, "scans", "benign", "a.png"), Buffer.from("\x89PNG\r\n\x1a\nSECRET-PATIENT-NAME"));
    const err = await loadDataset(root, "scans").catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/is not a well-formed PNG/);
    expect((err as Error).message).not.toMatch(/SECRET/);
  });

  it("refuses an image that is a symbolic link out of the data root", async () => {
    const outside = mkdtempSync(join(tmpdir(), "enclave-outside-"));
    writeFileSync(join(outside, "x.png"), png(4, 3, () => [1, 1, 1, 255]));
    symlinkSync(join(outside, "x.png"), join(root, "scans", "benign", "z.png"));
    await refused(/resolves outside the data root/);
    rmSync(outside, { recursive: true, force: true });
  });
});
