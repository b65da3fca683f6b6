import { gunzipSync } from "node:zlib";
import { parse } from "csv-parse/sync";
import { EnclaveError, ValidationError } from "../errors.js";
import { ColumnName, MAX_CLASSES, type DatasetColumn } from "../schemas/dataset.js";

/**
 * A first draft of a dataset's schema, inferred from the file, for its owner to review before the
 * Data Sentry enforces it. It holds no data value: types, nullability and ranges rounded outward to
 * a power of ten (never a row's value), and category values (and the label's classes) only for the
 * columns the owner names in `categories`; any other column's values are left out and reported.
 */
export interface InferOptions {
  /** Label column (default: the last column). */
  label?: string;
  /** Columns whose distinct values the owner confirms may be written (category names, classes). */
  categories?: readonly string[];
  delimiter?: "," | ";" | "\t" | "|";
  description?: string;
}

export interface InferredColumn {
  name: string;
  type: DatasetColumn["type"];
  /** Distinct values seen (category columns): a count, never the values. */
  distinct?: number;
  /** Category column whose values were not written (not confirmed). */
  valuesOmitted?: boolean;
}

export interface InferredSchema {
  /** The schema document to write (it fails to load until every `valuesOmitted` column is reviewed). */
  schema: Record<string, unknown>;
  columns: InferredColumn[];
  rows: number;
}

const NUMBER = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

/** The smallest power of ten >= |x| (1 for 0), signed: a bound that reveals only a magnitude. */
function decade(x: number): number {
  if (x === 0) return 0;
  const p = 10 ** Math.ceil(Math.log10(Math.abs(x)));
  return Math.sign(x) * (Number.isFinite(p) ? p : Number.MAX_VALUE);
}

export function inferCsvSchema(file: Uint8Array, name: string, o: InferOptions = {}): InferredSchema {
  const text = new TextDecoder("utf-8", { fatal: false }).decode(name.endsWith(".gz") ? gunzipSync(file) : file);
  let records: string[][];
  try {
    records = parse(text, { delimiter: o.delimiter ?? ",", bom: true, skip_empty_lines: true, relax_column_count: false });
  } catch (err) {
    // csv-parse messages can quote cells: report only where.
    const line = (err as { lines?: number }).lines;
    throw new EnclaveError("SCHEMA_INFER_CSV", `${name}: not a well-formed CSV${line ? ` (near line ${line})` : ""}`);
  }
  if (records.length < 2) throw new EnclaveError("SCHEMA_INFER_CSV", `${name}: needs a header line and at least one row`);
  const [header, ...rows] = records;
  header.forEach((h, i) => {
    if (!ColumnName.safeParse(h).success)
      throw new ValidationError("CSV header", [
        { path: `column ${i + 1}`, rule: "must be a column name of letters, digits, space and _ . - ( ) /" },
      ]);
  });
  const labelName = o.label ?? header[header.length - 1];
  const confirmed = new Set(o.categories ?? []);
  const unknown = [...confirmed, labelName].filter((c) => !header.includes(c));
  if (unknown.length > 0)
    throw new ValidationError("schema infer options", [
      { path: o.label && !header.includes(o.label) ? "--label" : "--categories", rule: `names no column of the file: ${unknown.join(", ")}` },
    ]);

  const columns: Record<string, unknown>[] = [];
  const report: InferredColumn[] = [];
  let classes: string[] | undefined;
  header.forEach((col, j) => {
    const cells = rows.map((r) => r[j]);
    const present = cells.filter((c) => c !== "");
    const nullable = present.length < cells.length;
    const numeric = col !== labelName && present.length > 0 && present.every((c) => NUMBER.test(c.trim()));
    if (numeric) {
      const xs = present.map(Number);
      const type = xs.every(Number.isInteger) ? "int" : "float";
      const lo = Math.min(...xs);
      const hi = Math.max(...xs);
      columns.push({
        name: col,
        type,
        min: lo >= 0 ? 0 : decade(lo),
        max: hi > 0 ? decade(hi) : 0,
        ...(nullable ? { nullable: true } : {}),
      });
      report.push({ name: col, type });
      return;
    }
    const distinct = [...new Set(present)].sort();
    const write = confirmed.has(col) && distinct.length <= MAX_CLASSES;
    columns.push({ name: col, type: "category", ...(write ? { values: distinct } : {}), ...(nullable ? { nullable: true } : {}) });
    report.push({ name: col, type: "category", distinct: distinct.length, ...(write ? {} : { valuesOmitted: true }) });
    if (col === labelName && write) classes = distinct;
  });
  const schema = {
    format: "csv",
    description: o.description ?? `inferred from ${name} by enclave schema infer: review before use`,
    header: true,
    ...(o.delimiter && o.delimiter !== "," ? { delimiter: o.delimiter } : {}),
    columns,
    label: { column: labelName, ...(classes ? { classes } : {}) },
    ...(rows.length > 1_000_000 ? { max_rows: rows.length } : {}),
  };
  return { schema, columns: report, rows: rows.length };
}
