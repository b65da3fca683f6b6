import { Readable } from "node:stream";
import { parse } from "csv-parse";
import type { CsvDatasetSchema, DatasetColumn } from "../schemas/dataset.js";
import { DatasetError, DatasetErrorCode as Code, type DatasetIssue } from "./dataset-error.js";
import type { Dataset } from "./dataset.js";
import { parseDatasetSchema } from "./schema-file.js";

/** How many violations an error lists; the rest are only counted. */
export const MAX_REPORTED_ISSUES = 10;
const MAX_RECORD_BYTES = 1 << 20;
const CHUNK_BYTES = 1 << 16;
const FLOAT32_MAX = 3.4028234663852886e38;

// Plain decimal / scientific notation only: no hex, no "1_000", no surrounding blanks.
const FLOAT_TEXT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const INT_TEXT = /^[+-]?\d+$/;
const NON_FINITE_TEXT = new Map([
  ["NaN", NaN],
  ["Infinity", Infinity],
  ["+Infinity", Infinity],
  ["-Infinity", -Infinity],
]);

/** A checked cell: a number, or the rule it broke (never the text it held). */
type Cell = { ok: true; value: number } | { ok: false; rule: string };
const bad = (rule: string): Cell => ({ ok: false, rule });

function parseNumber(text: string, col: DatasetColumn): Cell {
  if (text === "") return col.nullable ? { ok: true, value: NaN } : bad("is empty in a non-nullable column");
  let v: number;
  if (col.type === "int") {
    if (!INT_TEXT.test(text)) return bad("is not an integer");
    v = Number(text);
    if (!Number.isSafeInteger(v)) return bad("is outside the safe integer range");
  } else {
    const special = NON_FINITE_TEXT.get(text);
    if (special !== undefined) {
      if (!col.allow_non_finite) return bad("must be a finite number (NaN/Infinity not allowed)");
      v = special;
    } else {
      if (!FLOAT_TEXT.test(text)) return bad("is not a decimal number");
      v = Number(text);
      if (!Number.isFinite(v) || Math.abs(v) > FLOAT32_MAX) return bad("is outside the float32 range");
    }
  }
  if (col.min !== undefined && v < col.min) return bad(`is below the declared minimum ${col.min}`);
  if (col.max !== undefined && v > col.max) return bad(`is above the declared maximum ${col.max}`);
  return { ok: true, value: v };
}

/** Where each declared column goes: a feature slot (or one-hot block), the label, or nowhere. */
interface ColumnPlan {
  col: DatasetColumn;
  /** First feature slot, or -1 when the column is checked but not used as a feature. */
  slot: number;
  /** Category value -> index (category columns). */
  categories?: Map<string, number>;
}

interface Plan {
  columns: ColumnPlan[];
  labelIndex: number;
  labelClasses: Map<string, number>;
  featureNames: string[];
}

function planColumns(schema: CsvDatasetSchema): Plan {
  const featureList = schema.features ?? schema.columns.map((c) => c.name).filter((n) => n !== schema.label.column);
  const order = new Map(featureList.map((name, i) => [name, i]));
  // Slots follow the `features` order, not file order, so a schema can reorder model inputs.
  const widths = featureList.map((name) => {
    const col = schema.columns.find((c) => c.name === name)!;
    return col.type === "category" ? col.values!.length : 1;
  });
  const starts: number[] = [];
  let total = 0;
  for (const w of widths) {
    starts.push(total);
    total += w;
  }
  const featureNames: string[] = new Array(total);
  const columns = schema.columns.map((col): ColumnPlan => {
    const k = order.get(col.name);
    const slot = k === undefined ? -1 : starts[k];
    const categories = col.values ? new Map(col.values.map((v, i) => [v, i])) : undefined;
    if (slot >= 0) {
      if (categories) col.values!.forEach((v, i) => (featureNames[slot + i] = `${col.name}=${v}`));
      else featureNames[slot] = col.name;
    }
    return { col, slot, categories };
  });
  return {
    columns,
    labelIndex: schema.columns.findIndex((c) => c.name === schema.label.column),
    labelClasses: new Map(schema.label.classes.map((c, i) => [c, i])),
    featureNames,
  };
}

/** Row-major float storage that grows by doubling up to a row cap. */
class GrowingRows {
  features: Float32Array;
  labels: Int32Array;
  rows = 0;
  constructor(
    private readonly width: number,
    initialRows: number,
  ) {
    this.features = new Float32Array(initialRows * width);
    this.labels = new Int32Array(initialRows);
  }
  /** Reserve the next row, returning its offset into `features`. */
  next(): number {
    if (this.rows === this.labels.length) {
      const cap = Math.max(16, this.labels.length * 2);
      const f = new Float32Array(cap * this.width);
      f.set(this.features);
      const l = new Int32Array(cap);
      l.set(this.labels);
      this.features = f;
      this.labels = l;
    }
    return this.rows++ * this.width;
  }
}

export interface ParseCsvOptions {
  /**
   * "required" (default): every row carries a valid label. "ignored": rows to predict on; the label
   * column may be absent, and where present its cells are not read (labels are returned as 0).
   */
  label?: "required" | "ignored";
}

/**
 * Parse and check CSV text against its schema. Every cell is checked (type, range, allowed
 * values, label class); violations are reported by row and column with the broken rule. The
 * dataset is returned only when the whole file passed.
 */
export async function parseCsvDataset(
  text: Buffer,
  declared: unknown,
  datasetId: string,
  options: ParseCsvOptions = {},
): Promise<Dataset> {
  // Re-validated here because this is a public entry point too; idempotent on a parsed schema.
  const parsed = parseDatasetSchema(declared, `${datasetId} (schema)`);
  if (parsed.format !== "csv") {
    throw DatasetError.of(Code.SCHEMA_INVALID, datasetId, "schema format must be csv for a CSV file");
  }
  let schema: CsvDatasetSchema = parsed;
  let plan = planColumns(schema);
  const width = plan.featureNames.length;
  let nCols = schema.columns.length;
  const ignoreLabel = options.label === "ignored";
  // Rows to predict on may leave the label column out: decided once, from the header or the first row.
  const dropLabelColumn = (present: boolean) => {
    if (present) return;
    schema = { ...schema, columns: schema.columns.filter((c) => c.name !== schema.label.column) };
    plan = planColumns(schema);
    nCols = schema.columns.length;
  };
  const issues: DatasetIssue[] = [];
  let totalIssues = 0;
  const report = (issue: DatasetIssue) => {
    totalIssues++;
    if (issues.length < MAX_REPORTED_ISSUES) issues.push(issue);
  };

  const out = new GrowingRows(width, Math.min(schema.max_rows, 1024));
  const parser = parse({
    bom: true,
    delimiter: schema.delimiter,
    relax_column_count: true,
    skip_empty_lines: true,
    max_record_size: MAX_RECORD_BYTES,
  });
  const chunks = function* () {
    for (let off = 0; off < text.length; off += CHUNK_BYTES) yield text.subarray(off, off + CHUNK_BYTES);
  };
  const source = Readable.from(chunks());
  source.pipe(parser);

  let sawHeader = !schema.header;
  let row = 0;
  try {
    for await (const record of parser as AsyncIterable<string[]>) {
      if (!sawHeader) {
        sawHeader = true;
        if (ignoreLabel) dropLabelColumn(record.includes(schema.label.column));
        checkHeader(record, schema, datasetId);
        continue;
      }
      if (ignoreLabel && !schema.header && row === 0) dropLabelColumn(record.length === nCols);
      row++;
      if (row > schema.max_rows) {
        throw DatasetError.of(Code.SCHEMA_VIOLATION, datasetId, `file has more than max_rows (${schema.max_rows}) rows`);
      }
      if (record.length !== nCols) {
        report({ row, rule: `has ${record.length} fields, the schema declares ${nCols}` });
        continue;
      }
      const base = out.next();
      const f = out.features;
      for (let c = 0; c < nCols; c++) {
        const p = plan.columns[c];
        const cell = record[c];
        if (c === plan.labelIndex) {
          if (ignoreLabel) continue;
          let key = cell;
          if (p.col.type === "int") {
            const parsed = parseNumber(cell, p.col);
            if (!parsed.ok) {
              report({ row, column: p.col.name, rule: parsed.rule });
              continue;
            }
            key = String(parsed.value);
          }
          const y = plan.labelClasses.get(key);
          if (y === undefined) report({ row, column: p.col.name, rule: "label is not one of the declared classes" });
          else out.labels[out.rows - 1] = y;
          continue;
        }
        if (p.categories) {
          if (cell === "" && p.col.nullable) continue; // missing category: all-zero one-hot block
          const k = p.categories.get(cell);
          if (k === undefined) {
            report({ row, column: p.col.name, rule: cell === "" ? "is empty in a non-nullable column" : "is not one of the declared values" });
          } else if (p.slot >= 0) {
            f[base + p.slot + k] = 1;
          }
          continue;
        }
        const parsed = parseNumber(cell, p.col);
        if (!parsed.ok) report({ row, column: p.col.name, rule: parsed.rule });
        else if (p.slot >= 0) f[base + p.slot] = parsed.value;
      }
    }
  } catch (e) {
    if (e instanceof DatasetError) throw e;
    // csv-parse messages quote the offending text; keep only its stable code.
    const code = (e as { code?: unknown }).code;
    const what = typeof code === "string" && /^[A-Z_]+$/.test(code) ? ` (${code})` : "";
    // The parser reads ahead in chunks, so `row` lags it: its own record count says where it failed.
    const parsed = (e as { records?: unknown }).records;
    const failedRow =
      typeof parsed === "number" && Number.isSafeInteger(parsed) ? Math.max(1, parsed + 1 - (schema.header ? 1 : 0)) : row + 1;
    throw DatasetError.of(Code.MALFORMED, datasetId, `CSV syntax error${what}`, { row: failedRow });
  } finally {
    source.destroy();
  }

  if (totalIssues > 0) throw new DatasetError(Code.SCHEMA_VIOLATION, datasetId, issues, totalIssues);
  if (row === 0) {
    throw DatasetError.of(Code.EMPTY, datasetId, sawHeader && schema.header ? "file has a header but no data rows" : "file is empty");
  }
  if (row < schema.min_rows) {
    throw DatasetError.of(Code.SCHEMA_VIOLATION, datasetId, `file has fewer than min_rows (${schema.min_rows}) rows`);
  }
  return {
    features: out.features.slice(0, row * width),
    labels: out.labels.slice(0, row),
    rows: row,
    numFeatures: width,
    numClasses: schema.label.classes.length,
    featureNames: plan.featureNames,
    classNames: [...schema.label.classes],
  };
}

/** The header must name exactly the declared columns in order. Found names are not echoed: without a header they are data. */
function checkHeader(record: string[], schema: CsvDatasetSchema, datasetId: string): void {
  if (record.length !== schema.columns.length) {
    throw DatasetError.of(
      Code.SCHEMA_VIOLATION,
      datasetId,
      `header has ${record.length} columns, the schema declares ${schema.columns.length}`,
    );
  }
  schema.columns.forEach((col, i) => {
    if (record[i] !== col.name) {
      throw DatasetError.of(Code.SCHEMA_VIOLATION, datasetId, `header column ${i + 1} does not match the declared name`, {
        column: col.name,
      });
    }
  });
}
