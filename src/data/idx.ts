import { DatasetError, DatasetErrorCode as Code } from "./dataset-error.js";
import type { Dataset } from "./dataset.js";

/**
 * IDX (the MNIST / Fashion-MNIST file format): big-endian. Bytes 0-1 are zero, byte 2 is the
 * element type (0x08 = unsigned byte, the only one accepted here), byte 3 the rank; then one
 * uint32 per dimension, then the elements in row-major order.
 */

export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;
const UBYTE = 0x08;
const MAX_DIM = 0x7fffffff;

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Parse an unsigned-byte IDX array of the given rank; the payload must match the dimensions exactly. */
export function parseIdx(bytes: Uint8Array, rank: number, datasetId: string): IdxArray {
  const fail = (rule: string): never => {
    throw DatasetError.of(Code.MALFORMED, datasetId, rule);
  };
  if (bytes.length < 4) fail("file is too short for an IDX header");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  const expected = (UBYTE << 8) | rank;
  if (magic !== expected) {
    fail(`IDX magic number is not 0x${expected.toString(16).padStart(8, "0")} (unsigned bytes, rank ${rank})`);
  }
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) fail("file is too short for its IDX dimensions");
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < rank; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    if (d < 1 || d > MAX_DIM) fail(`IDX dimension ${i + 1} must be in [1, ${MAX_DIM}]`);
    dims.push(d);
    count *= d;
  }
  if (count !== bytes.length - headerBytes) {
    fail(`IDX payload has ${bytes.length - headerBytes} bytes, the dimensions declare ${count}`);
  }
  return { dims, data: bytes.subarray(headerBytes) };
}

export interface IdxPairOptions {
  classNames: readonly string[];
  minRows?: number;
  maxRows?: number;
  /** Id of the label file, for messages about it. */
  labelsId?: string;
  /** Required image height and width, when the dataset fixes them. */
  imageShape?: readonly [number, number];
}

/**
 * Combine an image file (rank 3: count x rows x cols) and a label file (rank 1: count) into a
 * Dataset, pixels scaled from [0, 255] to [0, 1].
 */
export function idxToDataset(imageBytes: Uint8Array, labelBytes: Uint8Array, imagesId: string, opts: IdxPairOptions): Dataset {
  const labelsId = opts.labelsId ?? imagesId;
  const images = parseIdx(imageBytes, 3, imagesId);
  const labels = parseIdx(labelBytes, 1, labelsId);
  const [n, h, w] = images.dims;
  if (labels.dims[0] !== n) {
    throw DatasetError.of(Code.SCHEMA_VIOLATION, imagesId, `image count ${n} differs from the label file's count ${labels.dims[0]}`);
  }
  if (opts.imageShape && (h !== opts.imageShape[0] || w !== opts.imageShape[1])) {
    const [eh, ew] = opts.imageShape;
    throw DatasetError.of(Code.SCHEMA_VIOLATION, imagesId, `images are ${h}x${w}, expected ${eh}x${ew}`);
  }
  if (opts.maxRows !== undefined && n > opts.maxRows) {
    throw DatasetError.of(Code.SCHEMA_VIOLATION, imagesId, `file has more than max_rows (${opts.maxRows}) rows`);
  }
  if (opts.minRows !== undefined && n < opts.minRows) {
    throw DatasetError.of(Code.SCHEMA_VIOLATION, imagesId, `file has fewer than min_rows (${opts.minRows}) rows`);
  }
  const numClasses = opts.classNames.length;
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = labels.data[i];
    if (v >= numClasses) {
      throw DatasetError.of(Code.SCHEMA_VIOLATION, labelsId, "label is not one of the declared classes", { row: i + 1 });
    }
    y[i] = v;
  }
  const d = h * w;
  const x = new Float32Array(n * d);
  const src = images.data;
  for (let i = 0; i < x.length; i++) x[i] = src[i] / 255;
  const featureNames = Array.from({ length: d }, (_, i) => `pixel_${i}`);
  return {
    features: x,
    labels: y,
    rows: n,
    numFeatures: d,
    numClasses,
    featureNames,
    classNames: [...opts.classNames],
    exampleShape: [1, h, w],
  };
}

/**
 * The inverse of idxToDataset for [1, h, w] images with pixels in [0, 1]: an image file and a label
 * file (pixels rounded to bytes, so a dataset read from IDX round-trips exactly). Used to write a
 * simulated site's shard.
 */
export function datasetToIdx(ds: Dataset): { images: Uint8Array; labels: Uint8Array } {
  const shape = ds.exampleShape;
  if (!shape || shape.length !== 3 || shape[0] !== 1)
    throw new TypeError("datasetToIdx needs single-channel images ([1, height, width])");
  const [, h, w] = shape;
  const images = new Uint8Array(16 + ds.rows * h * w);
  const iv = new DataView(images.buffer);
  iv.setUint32(0, IDX_IMAGES_MAGIC, false);
  iv.setUint32(4, ds.rows, false);
  iv.setUint32(8, h, false);
  iv.setUint32(12, w, false);
  for (let i = 0; i < ds.rows * h * w; i++)
    images[16 + i] = Math.min(255, Math.max(0, Math.round(ds.features[i] * 255)));
  const labels = new Uint8Array(8 + ds.rows);
  const lv = new DataView(labels.buffer);
  lv.setUint32(0, IDX_LABELS_MAGIC, false);
  lv.setUint32(4, ds.rows, false);
  labels.set(ds.labels, 8);
  return { images, labels };
}
