import { createHash } from "node:crypto";
import type { DatasetSchema } from "../schemas/dataset.js";
import { parseCsvDataset } from "./csv-loader.js";
import { DatasetError, DatasetErrorCode as Code } from "./dataset-error.js";
import type { Dataset } from "./dataset.js";
import { recordsIdentity } from "./identity.js";
import { idxToDataset } from "./idx.js";
import { loadImageFolder } from "./image-folder.js";
import { findDatasetSchema, parseDatasetSchema } from "./schema-file.js";
import {
  gunzipIfCompressed,
  listDatasetDirectory,
  readDatasetFile,
  type DatasetFile,
  type SentryLimits,
} from "./sentry.js";

export interface LoadDatasetOptions extends SentryLimits {
  /**
   * The schema the job declares. When omitted, the schema file next to the data is used
   * (`<name>.schema.json|yaml`). Untrusted input either way: it is validated first.
   */
  schema?: unknown;
}

export interface LoadedDataset {
  dataset: Dataset;
  schema: DatasetSchema;
  source: {
    /** Dataset id relative to the data root. */
    id: string;
    /** Schema file id, or undefined when the schema came from the caller. */
    schemaId?: string;
    /** SHA-256 (hex) of the file bytes as stored (before decompression); with IDX, of the image file. */
    sha256: string;
    labelsSha256?: string;
    /** The canonical identity of the records (recordsIdentity): the privacy ledger's key. */
    identity: string;
  };
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function checkPinned(file: DatasetFile, digest: string, pinned: string | undefined): void {
  if (pinned !== undefined && pinned !== digest) {
    throw DatasetError.of(Code.SCHEMA_VIOLATION, file.id, "file SHA-256 differs from the schema's pinned sha256");
  }
}

/**
 * The Data Sentry's front door: resolve `datasetId` inside `dataRoot`, refuse escapes and
 * oversized or irregular files, validate the schema, check every row against it, and return
 * the dataset only when all of it passed. Throws DatasetError (stable `code`) otherwise.
 */
export async function loadDataset(dataRoot: string, datasetId: string, options: LoadDatasetOptions = {}): Promise<LoadedDataset> {
  const { schema: declared, ...limits } = options;
  if (await isDirectory(dataRoot, datasetId)) return loadFolder(dataRoot, datasetId, declared, limits);
  const file = await readDatasetFile(dataRoot, datasetId, limits);
  let schema: DatasetSchema;
  let schemaId: string | undefined;
  if (declared !== undefined) {
    schema = parseDatasetSchema(declared, `${datasetId} (declared schema)`);
  } else {
    ({ schema, schemaId } = await findDatasetSchema(dataRoot, datasetId, limits));
  }
  if (schema.format === "image_folder")
    throw DatasetError.of(Code.SCHEMA_VIOLATION, file.id, "an image_folder dataset id must name a directory");
  const digest = sha256(file.bytes);
  checkPinned(file, digest, schema.sha256);

  if (schema.format === "csv") {
    const text = await gunzipIfCompressed(file.bytes, file.id, limits);
    const dataset = await parseCsvDataset(text, schema, file.id);
    return {
      dataset,
      schema,
      source: { id: file.id, schemaId, sha256: digest, identity: recordsIdentity(dataset) },
    };
  }

  const slash = datasetId.lastIndexOf("/");
  const labelsId = datasetId.slice(0, slash + 1) + schema.labels_file;
  if (labelsId === datasetId) {
    throw DatasetError.of(Code.SCHEMA_INVALID, datasetId, "labels_file must differ from the image file");
  }
  const labelFile = await readDatasetFile(dataRoot, labelsId, limits);
  const labelsDigest = sha256(labelFile.bytes);
  checkPinned(labelFile, labelsDigest, schema.labels_sha256);
  const dataset = idxToDataset(
    await gunzipIfCompressed(file.bytes, file.id, limits),
    await gunzipIfCompressed(labelFile.bytes, labelFile.id, limits),
    file.id,
    {
      classNames: schema.classes,
      minRows: schema.min_rows,
      maxRows: schema.max_rows,
      labelsId,
      imageShape: schema.image_shape,
    },
  );
  return {
    dataset,
    schema,
    source: {
      id: file.id,
      schemaId,
      sha256: digest,
      labelsSha256: labelsDigest,
      identity: recordsIdentity(dataset),
    },
  };
}

/** Whether the id names a directory inside the data root (an image folder); escapes are refused. */
async function isDirectory(dataRoot: string, datasetId: string): Promise<boolean> {
  try {
    await listDatasetDirectory(dataRoot, datasetId);
    return true;
  } catch (e) {
    if (e instanceof DatasetError && e.code === Code.NOT_FOUND) return false;
    throw e;
  }
}

async function loadFolder(
  dataRoot: string,
  datasetId: string,
  declared: unknown,
  limits: SentryLimits,
): Promise<LoadedDataset> {
  let schema: DatasetSchema;
  let schemaId: string | undefined;
  if (declared !== undefined) schema = parseDatasetSchema(declared, `${datasetId} (declared schema)`);
  else ({ schema, schemaId } = await findDatasetSchema(dataRoot, datasetId, limits));
  if (schema.format !== "image_folder")
    throw DatasetError.of(Code.NOT_REGULAR_FILE, datasetId, "is a directory, and its schema is not an image_folder");
  const { dataset, sha256 } = await loadImageFolder(dataRoot, datasetId, schema, limits);
  return { dataset, schema, source: { id: datasetId, schemaId, sha256, identity: recordsIdentity(dataset) } };
}
