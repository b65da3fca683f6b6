import { parse as parseYaml } from "yaml";
import { ValidationError } from "../errors.js";
import { parseContract } from "../schemas/contract.js";
import { DatasetSchema } from "../schemas/dataset.js";
import { DatasetError, DatasetErrorCode as Code } from "./dataset-error.js";
import { readDatasetFile, type SentryLimits } from "./sentry.js";

/** A schema file is small; anything larger is refused before parsing. */
export const MAX_SCHEMA_FILE_BYTES = 1024 * 1024;
const SCHEMA_SUFFIXES = [".schema.json", ".schema.yaml", ".schema.yml"];

/**
 * Candidate schema ids for a dataset id: the data file's name without `.gz` and without its
 * last extension, plus `.schema.json|.yaml|.yml`, in the same directory.
 * `digits.csv.gz` -> `digits.schema.json`; `fm/t10k-images-idx3-ubyte.gz` -> `fm/t10k-images-idx3-ubyte.schema.json`.
 */
export function schemaIdsFor(datasetId: string): string[] {
  const slash = datasetId.lastIndexOf("/");
  const dir = datasetId.slice(0, slash + 1);
  let base = datasetId.slice(slash + 1);
  if (base.endsWith(".gz")) base = base.slice(0, -3);
  const dot = base.lastIndexOf(".");
  if (dot > 0) base = base.slice(0, dot);
  return SCHEMA_SUFFIXES.map((s) => dir + base + s);
}

/** Validate a schema object (from a file or a job) as a DatasetSchema. */
export function parseDatasetSchema(input: unknown, schemaId: string): DatasetSchema {
  try {
    return parseContract(DatasetSchema, input, "dataset schema");
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    throw new DatasetError(
      Code.SCHEMA_INVALID,
      schemaId,
      e.issues.map((i) => ({ rule: `${i.path || "(root)"}: ${i.rule}` })),
    );
  }
}

/** Read a schema file through the Sentry (same root, same checks) and validate it. */
export async function readDatasetSchema(dataRoot: string, schemaId: string, limits: SentryLimits = {}): Promise<DatasetSchema> {
  const file = await readDatasetFile(dataRoot, schemaId, {
    ...limits,
    maxFileBytes: Math.min(limits.maxFileBytes ?? MAX_SCHEMA_FILE_BYTES, MAX_SCHEMA_FILE_BYTES),
  });
  const text = file.bytes.toString("utf8");
  let doc: unknown;
  try {
    doc = schemaId.endsWith(".json") ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 100, uniqueKeys: true });
  } catch {
    throw DatasetError.of(Code.SCHEMA_INVALID, schemaId, `schema file is not valid ${schemaId.endsWith(".json") ? "JSON" : "YAML"}`);
  }
  return parseDatasetSchema(doc, schemaId);
}

/** Find the one schema file next to a dataset and load it. Refuses none and refuses several. */
export async function findDatasetSchema(
  dataRoot: string,
  datasetId: string,
  limits: SentryLimits = {},
): Promise<{ schemaId: string; schema: DatasetSchema }> {
  const found: { schemaId: string; schema: DatasetSchema }[] = [];
  for (const schemaId of schemaIdsFor(datasetId)) {
    try {
      found.push({ schemaId, schema: await readDatasetSchema(dataRoot, schemaId, limits) });
    } catch (e) {
      if (e instanceof DatasetError && e.code === Code.NOT_FOUND) continue;
      throw e;
    }
  }
  if (found.length === 0) {
    throw DatasetError.of(Code.SCHEMA_NOT_FOUND, datasetId, `no schema file next to the dataset (expected ${schemaIdsFor(datasetId)[0]})`);
  }
  if (found.length > 1) {
    throw DatasetError.of(Code.SCHEMA_INVALID, datasetId, "more than one schema file next to the dataset");
  }
  return found[0];
}
