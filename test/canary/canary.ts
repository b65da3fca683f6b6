import { randomBytes } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { openDatabase } from "../../src/storage/database.js";

/**
 * Canaries for the non-negotiable: no data value ever reaches a log line, an error message, a
 * response or an output file. A canary is a value planted in a dataset that exists nowhere else;
 * finding any of its forms in an output means a data value leaked.
 */

export const REPO = fileURLToPath(new URL("../../", import.meta.url));
export { ENCLAVE_BIN as BIN } from "../support/enclave-process.js";
export const BUNDLED_CSV = join(REPO, "data/breast-cancer-wisconsin.csv");
export const BUNDLED_SCHEMA = join(REPO, "data/breast-cancer-wisconsin.schema.json");

/** A planted number and the textual forms it could leak as. */
export interface NumberCanary {
  column: string;
  /** Data row (1-based, header not counted) it is planted in. */
  row: number;
  /** The cell text. */
  cell: string;
  value: number;
  /** Any of these in text is a leak (decimal to one place, exponent forms, the cell itself). */
  texts: string[];
}

/**
 * Numbers valid for the schema (>= 0) and extreme for their column, so a column min or max in any
 * report would be the canary itself. Digits chosen so every rounding to >= 1 decimal keeps the
 * "NNNNN.D" prefix (73291.41812 -> 73291.4, 73291.42, 73291.418, float32 73291.4140625).
 */
export const NUMBER_CANARIES: NumberCanary[] = [
  { column: "mean_area", row: 5, cell: "73291.41812", prefix: "73291.4" },
  { column: "se_texture", row: 100, cell: "59382.61377", prefix: "59382.6" },
  { column: "worst_perimeter", row: 40, cell: "0.00731914", prefix: "0.007319" },
  { column: "mean_texture", row: 333, cell: "81726.31549", prefix: "81726.3" },
].map((c) => {
  const value = Number(c.cell);
  const exps = [3, 4, 5, 6].map((k) => value.toExponential(k));
  return { column: c.column, row: c.row, cell: c.cell, value, texts: [c.cell, c.prefix, ...exps] };
});

/** A unique string (per run) for the Data Sentry's rejections. */
export function stringCanary(tag: string): string {
  return `CANARY-${tag}-${randomBytes(6).toString("hex")}`;
}

/** Byte forms of a number: float32 and float64, little and big endian (weights, tensors, DB pages). */
export function numberBytes(value: number, widths: (4 | 8)[] = [4, 8]): Buffer[] {
  const out: Buffer[] = [];
  for (const w of widths) {
    const b = Buffer.alloc(w);
    if (w === 4) {
      b.writeFloatLE(value);
      out.push(Buffer.from(b));
      b.writeFloatBE(value);
      out.push(Buffer.from(b));
    } else {
      b.writeDoubleLE(value);
      out.push(Buffer.from(b));
      b.writeDoubleBE(value);
      out.push(Buffer.from(b));
    }
  }
  return out;
}

export interface Needle {
  what: string;
  bytes: Buffer;
  /**
   * Not searched in files whose path matches: 4-byte floats are not looked for in the ledger's
   * database pages (tens of MB of them would match a 4-byte pattern by chance now and then, and
   * the ledger stores doubles, which are looked for).
   */
  skipPath?: RegExp;
}

const DATABASE_FILES = /(^|\/)db\//;

/** Every form of every canary: texts as UTF-8 (and UTF-16LE for strings), numbers as bytes. */
export function needles(strings: string[], numbers: NumberCanary[] = NUMBER_CANARIES): Needle[] {
  const out: Needle[] = [];
  for (const s of strings) {
    out.push({ what: s, bytes: Buffer.from(s, "utf8") });
    out.push({ what: `${s} (utf16)`, bytes: Buffer.from(s, "utf16le") });
    // The random part alone catches a truncated or re-cased echo.
    const tail = s.split("-").pop()!;
    out.push({ what: `${s} (tail)`, bytes: Buffer.from(tail, "utf8") });
    out.push({ what: `${s} (tail, upper)`, bytes: Buffer.from(tail.toUpperCase(), "utf8") });
  }
  for (const n of numbers) {
    for (const t of n.texts) out.push({ what: `${n.cell} as "${t}"`, bytes: Buffer.from(t, "utf8") });
    const [f32le, f32be, f64le, f64be] = numberBytes(n.value);
    out.push({ what: `${n.cell} as float32 LE`, bytes: f32le, skipPath: DATABASE_FILES });
    out.push({ what: `${n.cell} as float32 BE`, bytes: f32be, skipPath: DATABASE_FILES });
    out.push({ what: `${n.cell} as float64 LE`, bytes: f64le });
    out.push({ what: `${n.cell} as float64 BE`, bytes: f64be });
  }
  return out;
}

/** The canaries found in `data` (by description); `path` is the file it came from, if any. */
export function findIn(data: Buffer | string, list: Needle[], path = ""): string[] {
  const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  return list.filter((n) => !(path && n.skipPath?.test(path)) && buf.includes(n.bytes)).map((n) => n.what);
}

/** Every regular file under `root`, minus those whose relative path `exclude` matches. */
export function filesUnder(root: string, exclude: (rel: string) => boolean = () => false): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, e.name);
      const rel = relative(root, full).split(sep).join("/");
      if (exclude(rel)) continue;
      if (e.isDirectory()) walk(full);
      else if (e.isFile()) out.push(full);
    }
  };
  if (existsSync(root)) walk(root);
  return out;
}

/** `file: canary` for every canary found in the files under `root`. */
export function scanTree(root: string, list: Needle[], exclude?: (rel: string) => boolean): string[] {
  const hits: string[] = [];
  for (const f of filesUnder(root, exclude)) {
    if (statSync(f).size === 0) continue;
    const rel = relative(root, f).split(sep).join("/");
    for (const what of findIn(readFileSync(f), list, rel)) hits.push(`${rel}: ${what}`);
  }
  return hits;
}

/** The bundled breast-cancer CSV as rows of cells (header first). */
export function bundledRows(): string[][] {
  return readFileSync(BUNDLED_CSV, "utf8")
    .trim()
    .split(/\r?\n/)
    .map((l) => l.split(","));
}

/**
 * Write `<dir>/<name>.csv` (the bundled rows with `plant` applied) and its schema (the bundled one
 * without the pinned sha256, which a modified copy cannot match).
 */
export function writeDataset(
  dir: string,
  name: string,
  plant: (rows: string[][], col: (name: string) => number) => void,
): string {
  mkdirSync(dir, { recursive: true });
  const rows = bundledRows();
  const header = rows[0];
  plant(rows, (n) => {
    const i = header.indexOf(n);
    if (i < 0) throw new Error(`no column ${n}`);
    return i;
  });
  const schema = JSON.parse(readFileSync(BUNDLED_SCHEMA, "utf8")) as Record<string, unknown>;
  delete schema.sha256;
  writeFileSync(join(dir, `${name}.csv`), rows.map((r) => r.join(",")).join("\n") + "\n");
  writeFileSync(join(dir, `${name}.schema.json`), JSON.stringify(schema, null, 2));
  return join(dir, `${name}.csv`);
}

/** The valid copy: every number canary in its row and column. */
export function plantNumbers(rows: string[][], col: (name: string) => number): void {
  for (const c of NUMBER_CANARIES) rows[c.row][col(c.column)] = c.cell;
}

/**
 * An initialised, empty embedded database: a fresh PGlite directory costs seconds of initdb, a copy
 * of this one about one. Copy it into a workspace with `seedWorkspace`.
 */
export async function databaseTemplate(dir: string): Promise<string> {
  const db = await openDatabase({ workspace: dir, url: "" });
  await db.close();
  return join(dir, "db");
}

export function seedWorkspace(template: string, workspace: string): void {
  cpSync(template, join(workspace, "db"), { recursive: true });
}
