import { EnclaveError } from "../errors.js";

/** Stable codes of every refusal by the Data Sentry and the loaders. */
export const DatasetErrorCode = {
  /** The id is empty, too long, or holds control characters, empty or `.` segments. */
  ID_INVALID: "DATASET_ID_INVALID",
  /** The id would leave the data root: `..`, absolute path, drive letter, backslash, symlink outside. */
  PATH_ESCAPE: "DATASET_PATH_ESCAPE",
  /** The configured data root is missing or not a directory. */
  ROOT_INVALID: "DATASET_ROOT_INVALID",
  NOT_FOUND: "DATASET_NOT_FOUND",
  /** A directory, FIFO, device or socket instead of a regular file. */
  NOT_REGULAR_FILE: "DATASET_NOT_REGULAR_FILE",
  /** The file (or its decompressed content) exceeds the configured byte limit. */
  TOO_LARGE: "DATASET_TOO_LARGE",
  /** No schema file next to the data, or more than one. */
  SCHEMA_NOT_FOUND: "DATASET_SCHEMA_NOT_FOUND",
  /** The schema file itself is not a valid DatasetSchema. */
  SCHEMA_INVALID: "DATASET_SCHEMA_INVALID",
  /** The data does not match its schema: header, types, ranges, labels, row counts, checksum. */
  SCHEMA_VIOLATION: "DATASET_SCHEMA_VIOLATION",
  /** The file holds no data rows. */
  EMPTY: "DATASET_EMPTY",
  /** The bytes are not well-formed CSV / gzip / IDX. */
  MALFORMED: "DATASET_MALFORMED",
} as const;
export type DatasetErrorCode = (typeof DatasetErrorCode)[keyof typeof DatasetErrorCode];

/** One broken rule. Locations only: a row number and a column name, never the cell's value. */
export interface DatasetIssue {
  /** 1-based index of the data row (the header line is not counted). */
  row?: number;
  column?: string;
  rule: string;
}

/** Printable form of an id for messages: JSON-quoted (escapes control characters) and truncated. */
function quoteId(id: unknown): string {
  const s = typeof id === "string" ? id : `<${typeof id}>`;
  return JSON.stringify(s.length > 200 ? s.slice(0, 200) + "..." : s);
}

function describe(issue: DatasetIssue): string {
  const where = [
    issue.row !== undefined ? `row ${issue.row}` : "",
    issue.column !== undefined ? `column ${JSON.stringify(issue.column)}` : "",
  ]
    .filter(Boolean)
    .join(", ");
  return where ? `${where}: ${issue.rule}` : issue.rule;
}

/**
 * A dataset was refused. The message names the dataset id (relative to the data root), and for
 * content problems the row, column and rule; it never includes a value read from the file.
 */
export class DatasetError extends EnclaveError {
  readonly dataset: string;
  readonly issues: readonly DatasetIssue[];
  /** Number of violations found, of which `issues` holds the first few. */
  readonly totalIssues: number;

  constructor(code: DatasetErrorCode, dataset: string, issues: DatasetIssue[], totalIssues = issues.length) {
    const shown = issues.map(describe).join("; ");
    const more = totalIssues > issues.length ? ` (and ${totalIssues - issues.length} more)` : "";
    super(code, `dataset ${quoteId(dataset)} refused: ${shown}${more}`);
    this.dataset = dataset;
    this.issues = issues;
    this.totalIssues = totalIssues;
  }

  static of(code: DatasetErrorCode, dataset: string, rule: string, where: Omit<DatasetIssue, "rule"> = {}) {
    return new DatasetError(code, dataset, [{ ...where, rule }]);
  }
}
