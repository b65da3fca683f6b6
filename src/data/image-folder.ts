import { createHash } from "node:crypto";
import { PNG } from "pngjs";
import type { ImageFolderDatasetSchema } from "../schemas/dataset.js";
import { DatasetError, DatasetErrorCode as Code } from "./dataset-error.js";
import type { Dataset } from "./dataset.js";
import { listDatasetDirectory, readDatasetFile, type SentryLimits } from "./sentry.js";

/**
 * An image folder (`<id>/<class>/<image>.png|.pgm`) through the Data Sentry: every class folder the
 * schema declares must exist, nothing else may be there, and every image is read through
 * readDatasetFile (escape, type and size checks), decoded strictly and checked against the
 * declared shape and channels. Rows are in class order, then file-name order.
 */
export async function loadImageFolder(
  dataRoot: string,
  datasetId: string,
  schema: ImageFolderDatasetSchema,
  limits: SentryLimits = {},
): Promise<{ dataset: Dataset; sha256: string }> {
  const top = await listDatasetDirectory(dataRoot, datasetId);
  for (const e of top)
    if (!e.directory || !schema.classes.includes(e.name))
      throw DatasetError.of(Code.SCHEMA_VIOLATION, `${datasetId}/${e.name}`, "is not a declared class folder");
  const [h, w] = schema.image_shape;
  const c = schema.channels;
  const pixels: Float32Array[] = [];
  const labels: number[] = [];
  const manifest = createHash("sha256");
  for (let label = 0; label < schema.classes.length; label++) {
    const folder = `${datasetId}/${schema.classes[label]}`;
    if (!top.some((e) => e.name === schema.classes[label]))
      throw DatasetError.of(Code.SCHEMA_VIOLATION, folder, "declared class folder is missing");
    for (const e of await listDatasetDirectory(dataRoot, folder)) {
      const id = `${folder}/${e.name}`;
      if (e.directory || !/\.(png|pgm)$/i.test(e.name))
        throw DatasetError.of(Code.SCHEMA_VIOLATION, id, "is not a .png or .pgm image");
      if (labels.length >= schema.max_rows)
        throw DatasetError.of(Code.SCHEMA_VIOLATION, datasetId, `folder has more than max_rows (${schema.max_rows}) images`);
      const file = await readDatasetFile(dataRoot, id, limits);
      manifest.update(`${schema.classes[label]}/${e.name}\0${createHash("sha256").update(file.bytes).digest("hex")}\n`);
      const image = /\.png$/i.test(e.name) ? decodePng(file.bytes, id, c) : decodePgm(file.bytes, id, c);
      if (image.height !== h || image.width !== w)
        throw DatasetError.of(Code.SCHEMA_VIOLATION, id, `image is ${image.height}x${image.width}, expected ${h}x${w}`);
      pixels.push(image.data);
      labels.push(label);
    }
  }
  if (labels.length < schema.min_rows)
    throw DatasetError.of(Code.SCHEMA_VIOLATION, datasetId, `folder has fewer than min_rows (${schema.min_rows}) images`);
  const d = c * h * w;
  const features = new Float32Array(labels.length * d);
  pixels.forEach((p, i) => features.set(p, i * d));
  return {
    dataset: {
      features,
      labels: Int32Array.from(labels),
      rows: labels.length,
      numFeatures: d,
      numClasses: schema.classes.length,
      featureNames: Array.from({ length: d }, (_, i) => `pixel_${i}`),
      classNames: [...schema.classes],
      exampleShape: [c, h, w],
    },
    sha256: manifest.digest("hex"),
  };
}

interface Image {
  width: number;
  height: number;
  /** [channels, height, width], in [0, 1]. */
  data: Float32Array;
}

/** PNG of any color type and bit depth (pngjs), to `channels` planes in [0, 1]. */
export function decodePng(bytes: Buffer, id: string, channels: 1 | 3): Image {
  let png: { width: number; height: number; data: Buffer };
  try {
    png = PNG.sync.read(bytes);
  } catch {
    throw DatasetError.of(Code.MALFORMED, id, "is not a well-formed PNG");
  }
  const { width, height, data } = png; // RGBA, 8 bits per sample
  const n = width * height;
  const out = new Float32Array(channels * n);
  for (let i = 0; i < n; i++) {
    const r = data[4 * i];
    const g = data[4 * i + 1];
    const b = data[4 * i + 2];
    if (channels === 1) {
      if (r !== g || g !== b)
        throw DatasetError.of(Code.SCHEMA_VIOLATION, id, "image has color; the schema declares 1 channel");
      out[i] = r / 255;
    } else {
      out[i] = r / 255;
      out[n + i] = g / 255;
      out[2 * n + i] = b / 255;
    }
  }
  return { width, height, data: out };
}

/**
 * Binary PGM (netpbm P5): "P5", width, height and maxval (1..65535) as decimal tokens separated by
 * whitespace (with # comments), one whitespace byte, then exactly width·height samples (two bytes,
 * big-endian, when maxval > 255). Anything else is refused.
 */
export function decodePgm(bytes: Buffer, id: string, channels: 1 | 3): Image {
  const fail = (rule: string): never => {
    throw DatasetError.of(Code.MALFORMED, id, rule);
  };
  if (channels !== 1) fail("PGM images are grayscale; the schema declares 3 channels");
  if (bytes.length < 2 || bytes[0] !== 0x50 || bytes[1] !== 0x35) fail("is not a binary PGM (P5)");
  let at = 2;
  const space = (b: number) => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d || b === 0x0b || b === 0x0c;
  const token = (): number => {
    for (;;) {
      while (at < bytes.length && space(bytes[at])) at++;
      if (bytes[at] !== 0x23) break;
      while (at < bytes.length && bytes[at] !== 0x0a && bytes[at] !== 0x0d) at++;
    }
    const start = at;
    while (at < bytes.length && bytes[at] >= 0x30 && bytes[at] <= 0x39 && at - start < 6) at++;
    if (at === start || (at < bytes.length && !space(bytes[at]))) fail("PGM header is malformed");
    return Number(bytes.subarray(start, at).toString("latin1"));
  };
  if (!space(bytes[at] ?? 0)) fail("PGM header is malformed");
  const width = token();
  const height = token();
  const maxval = token();
  if (width < 1 || height < 1 || width > 65535 || height > 65535) fail("PGM dimensions are out of range");
  if (maxval < 1 || maxval > 65535) fail("PGM maxval must be in [1, 65535]");
  at++; // the single whitespace byte after maxval
  const wide = maxval > 255;
  const n = width * height;
  if (bytes.length - at !== n * (wide ? 2 : 1)) fail("PGM payload size differs from its header");
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const v = wide ? (bytes[at + 2 * i] << 8) | bytes[at + 2 * i + 1] : bytes[at + i];
    if (v > maxval) fail("PGM sample exceeds maxval");
    out[i] = v / maxval;
  }
  return { width, height, data: out };
}
