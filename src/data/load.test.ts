import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { inspect } from "node:util";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DatasetSchemaInput } from "../schemas/dataset.js";
import { DatasetError } from "./dataset-error.js";
import { classCounts } from "./dataset.js";
import { loadDataset } from "./load.js";
import { schemaIdsFor } from "./schema-file.js";

const BUNDLED = fileURLToPath(new URL("../../data/", import.meta.url));

async function refusal(promise: Promise<unknown>, code: string): Promise<DatasetError> {
  try {
    await promise;
  } catch (e) {
    expect(e).toBeInstanceOf(DatasetError);
    expect((e as DatasetError).code, (e as Error).message).toBe(code);
    return e as DatasetError;
  }
  throw new Error(`expected ${code}, but the call succeeded`);
}

/** All an error could leak if logged: message, stack, every own field (shown or hidden), cause. */
function everythingIn(e: unknown): string {
  return [String(e), (e as Error).stack ?? "", inspect(e, { depth: 10, showHidden: true }), JSON.stringify(e)].join("\n");
}

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "enclave-load-"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A small tabular schema: two floats (one bounded), an int, a category, and a label. */
const smallSchema = (patch: Partial<Extract<DatasetSchemaInput, { format: "csv" }>> = {}): DatasetSchemaInput => ({
  format: "csv",
  columns: [
    { name: "age", type: "float", min: 0, max: 130 },
    { name: "dose", type: "float" },
    { name: "visits", type: "int", min: 0, max: 100 },
    { name: "site", type: "category", values: ["north", "south, east"] },
    { name: "outcome", type: "category", values: ["sick", "well"] },
  ],
  label: { column: "outcome", classes: ["well", "sick"] },
  ...patch,
});

let fileCounter = 0;
/** Write `body` and its schema into the temp root; returns the dataset id. */
function put(body: string | Buffer, schema: DatasetSchemaInput | string = smallSchema(), ext = "csv"): string {
  const name = `ds${fileCounter++}`;
  writeFileSync(join(root, `${name}.${ext}`), body);
  if (typeof schema === "string") writeFileSync(join(root, `${name}.schema.yaml`), schema);
  else writeFileSync(join(root, `${name}.schema.json`), JSON.stringify(schema));
  return `${name}.${ext}`;
}

const HEADER = "age,dose,visits,site,outcome\n";

describe("bundled breast-cancer-wisconsin.csv", () => {
  it("loads 569 rows, 30 features, 212 malignant / 357 benign", async () => {
    const { dataset: ds, source } = await loadDataset(BUNDLED, "breast-cancer-wisconsin.csv");
    expect(ds.rows).toBe(569);
    expect(ds.numFeatures).toBe(30);
    expect(ds.features.length).toBe(569 * 30);
    expect(ds.classNames).toEqual(["malignant", "benign"]);
    expect(Array.from(classCounts(ds.labels, 2))).toEqual([212, 357]);
    expect(ds.featureNames[0]).toBe("mean_radius");
    expect(ds.featureNames[29]).toBe("worst_fractal_dimension");
    expect(source.schemaId).toBe("breast-cancer-wisconsin.schema.json");
    expect(source.sha256).toBe(createHash("sha256").update(readFileSync(join(BUNDLED, "breast-cancer-wisconsin.csv"))).digest("hex"));
  });

  it("matches the published feature ranges (scikit-learn DESCR: radius 6.981..28.11, worst area 185.2..4254)", async () => {
    const { dataset: ds } = await loadDataset(BUNDLED, "breast-cancer-wisconsin.csv");
    const column = (j: number) => Array.from({ length: ds.rows }, (_, r) => ds.features[r * 30 + j]);
    const range = (j: number) => [Math.min(...column(j)), Math.max(...column(j))];
    expect(range(0)[0]).toBeCloseTo(6.981, 5);
    expect(range(0)[1]).toBeCloseTo(28.11, 4);
    expect(range(1)[0]).toBeCloseTo(9.71, 5);
    expect(range(1)[1]).toBeCloseTo(39.28, 4);
    expect(range(23)[0]).toBeCloseTo(185.2, 3);
    expect(range(23)[1]).toBeCloseTo(4254, 2);
    // Row 1 of the UCI file is a malignant tumour with mean radius 17.99.
    expect(ds.features[0]).toBeCloseTo(17.99, 5);
    expect(ds.labels[0]).toBe(0);
  });
});

describe("bundled digits.csv.gz (no header, gzip)", () => {
  it("loads 1797 rows of 64 pixels with scikit-learn's per-digit counts", async () => {
    const { dataset: ds } = await loadDataset(BUNDLED, "digits.csv.gz");
    expect(ds.rows).toBe(1797);
    expect(ds.numFeatures).toBe(64);
    expect(ds.classNames).toEqual(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    expect(Array.from(classCounts(ds.labels, 10))).toEqual([178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
    expect(Math.max(...ds.features)).toBe(16);
    // First image of the file is a zero: 0,0,5,13,9,1,0,0,...
    expect(Array.from(ds.features.subarray(0, 8))).toEqual([0, 0, 5, 13, 9, 1, 0, 0]);
    expect(ds.labels[0]).toBe(0);
  });
});

describe("CSV dialect", () => {
  it("handles a BOM, CRLF line ends, quoted fields with delimiters and a trailing blank line", async () => {
    const body = "\uFEFF" + HEADER.replace("\n", "\r\n") + '34.5,"1e-3",2,"south, east",sick\r\n' + "0,-2.5,0,north,well\r\n\r\n";
    const { dataset: ds } = await loadDataset(root, put(body));
    expect(ds.rows).toBe(2);
    // Features: age, dose, visits, site=north, site=south, east (one-hot), label outcome (well=0, sick=1).
    expect(ds.featureNames).toEqual(["age", "dose", "visits", "site=north", "site=south, east"]);
    expect(Array.from(ds.features)).toEqual([34.5, Math.fround(0.001), 2, 0, 1, 0, -2.5, 0, 1, 0]);
    expect(Array.from(ds.labels)).toEqual([1, 0]);
    expect(ds.numClasses).toBe(2);
  });

  it("honours an explicit feature list (subset and order) and a tab delimiter", async () => {
    const schema = smallSchema({ features: ["visits", "age"], delimiter: "\t" });
    const body = HEADER.replaceAll(",", "\t") + "30\t1\t7\tnorth\twell\n";
    const { dataset: ds } = await loadDataset(root, put(body, schema));
    expect(ds.featureNames).toEqual(["visits", "age"]);
    expect(Array.from(ds.features)).toEqual([7, 30]);
  });

  it("stores missing values of nullable columns as NaN / an all-zero one-hot block", async () => {
    const schema = smallSchema();
    if (schema.format !== "csv") throw new Error("unreachable");
    schema.columns[1] = { name: "dose", type: "float", nullable: true };
    schema.columns[3] = { name: "site", type: "category", values: ["north", "south, east"], nullable: true };
    const { dataset: ds } = await loadDataset(root, put(HEADER + "30,,1,,well\n", schema));
    expect(Array.from(ds.features)).toEqual([30, NaN, 1, 0, 0]);
  });

  it("accepts NaN/Infinity only in columns that allow them", async () => {
    const schema = smallSchema();
    if (schema.format !== "csv") throw new Error("unreachable");
    schema.columns[1] = { name: "dose", type: "float", allow_non_finite: true };
    const { dataset: ds } = await loadDataset(root, put(HEADER + "30,-Infinity,1,north,well\n31,NaN,1,north,well\n", schema));
    expect(ds.features[1]).toBe(-Infinity);
    expect(ds.features[6]).toBeNaN();
    await refusal(loadDataset(root, put(HEADER + "30,NaN,1,north,well\n")), "DATASET_SCHEMA_VIOLATION");
  });

  it("reads a YAML schema file", async () => {
    const yaml = [
      "format: csv",
      "columns:",
      "  - { name: x, type: float }",
      "  - { name: y, type: int }",
      "label: { column: y, classes: ['0', '1'] }",
    ].join("\n");
    const { dataset: ds, source } = await loadDataset(root, put("x,y\n1.5,1\n2.5,0\n3.5,01\n", yaml));
    expect(Array.from(ds.labels)).toEqual([1, 0, 1]);
    expect(source.schemaId).toMatch(/\.schema\.yaml$/);
  });

  it("uses a schema declared by the caller instead of a file", async () => {
    const id = put(HEADER + "30,1,1,north,well\n", smallSchema({ max_rows: 1 }));
    const { dataset: ds, source } = await loadDataset(root, id, { schema: smallSchema() });
    expect(ds.rows).toBe(1);
    expect(source.schemaId).toBeUndefined();
    await refusal(loadDataset(root, id, { schema: { format: "csv" } }), "DATASET_SCHEMA_INVALID");
  });
});

describe("schema files", () => {
  it("derives the schema name from the data file name", () => {
    expect(schemaIdsFor("digits.csv.gz")[0]).toBe("digits.schema.json");
    expect(schemaIdsFor("a/b/breast.csv")).toEqual(["a/b/breast.schema.json", "a/b/breast.schema.yaml", "a/b/breast.schema.yml"]);
    expect(schemaIdsFor("fm/t10k-images-idx3-ubyte.gz")[0]).toBe("fm/t10k-images-idx3-ubyte.schema.json");
  });

  it("refuses data without a schema file", async () => {
    writeFileSync(join(root, "orphan.csv"), HEADER);
    const e = await refusal(loadDataset(root, "orphan.csv"), "DATASET_SCHEMA_NOT_FOUND");
    expect(e.message).toMatch(/orphan\.schema\.json/);
  });

  it("refuses two schema files for one dataset", async () => {
    const id = put(HEADER + "1,1,1,north,well\n");
    writeFileSync(join(root, id.replace(".csv", ".schema.yaml")), "format: csv\n");
    await refusal(loadDataset(root, id), "DATASET_SCHEMA_INVALID");
  });

  it("refuses an invalid schema, naming the field and rule", async () => {
    const bad = smallSchema({ label: { column: "nope", classes: ["a", "b"] } });
    const e = await refusal(loadDataset(root, put(HEADER, bad)), "DATASET_SCHEMA_INVALID");
    expect(e.message).toMatch(/label\.column: must name a declared column/);
    const e2 = await refusal(loadDataset(root, put(HEADER, "format: csv\ncolumns: [")), "DATASET_SCHEMA_INVALID");
    expect(e2.message).toMatch(/not valid YAML/);
  });

  it("refuses a file whose SHA-256 differs from the pinned one", async () => {
    const e = await refusal(
      loadDataset(root, put(HEADER + "1,1,1,north,well\n", smallSchema({ sha256: "0".repeat(64) }))),
      "DATASET_SCHEMA_VIOLATION",
    );
    expect(e.message).toMatch(/SHA-256/);
  });
});

describe("Sentry refusals of file content", () => {
  it("refuses an empty file and a header-only file", async () => {
    expect((await refusal(loadDataset(root, put("")), "DATASET_EMPTY")).message).toMatch(/file is empty/);
    expect((await refusal(loadDataset(root, put(HEADER)), "DATASET_EMPTY")).message).toMatch(/header but no data/);
  });

  it.each([
    ["a renamed column", "age,dose,visits,region,outcome\n", /header column 4 does not match/],
    ["a missing column", "age,dose,visits,site\n", /header has 4 columns, the schema declares 5/],
    ["reordered columns", "dose,age,visits,site,outcome\n", /header column 1/],
    ["no header at all", "30,1,1,north,well\n", /header column 1/],
  ])("refuses a header with %s", async (_what, header, rule) => {
    const e = await refusal(loadDataset(root, put(header + "30,1,1,north,well\n")), "DATASET_SCHEMA_VIOLATION");
    expect(e.message).toMatch(rule);
  });

  it.each([
    ["a non-numeric float", "abc,1,1,north,well", "age", /not a decimal number/],
    ["hex in a float", "0x10,1,1,north,well", "age", /not a decimal number/],
    ["a blank-padded float", " 30,1,1,north,well", "age", /not a decimal number/],
    ["Infinity in a finite column", "30,Infinity,1,north,well", "dose", /finite/],
    ["a float overflowing float32", "30,1e39,1,north,well", "dose", /float32 range/],
    ["a fractional int", "30,1,1.5,north,well", "visits", /not an integer/],
    ["an int over the max", "30,1,101,north,well", "visits", /above the declared maximum 100/],
    ["a float under the min", "-1,1,1,north,well", "age", /below the declared minimum 0/],
    ["an empty non-nullable cell", "30,,1,north,well", "dose", /empty in a non-nullable/],
    ["an unknown category", "30,1,1,west,well", "site", /not one of the declared values/],
    ["an unknown label", "30,1,1,north,dead", "outcome", /label is not one of the declared classes/],
    ["a label differing only in case", "30,1,1,north,Well", "outcome", /label is not one of/],
  ])("refuses %s, naming row and column", async (_what, row, column, rule) => {
    const e = await refusal(loadDataset(root, put(HEADER + "30,1,1,north,well\n" + row + "\n")), "DATASET_SCHEMA_VIOLATION");
    expect(e.issues).toHaveLength(1);
    expect(e.issues[0]).toMatchObject({ row: 2, column });
    expect(e.issues[0].rule).toMatch(rule);
    expect(e.message).toContain(`row 2, column "${column}"`);
  });

  it("refuses a row with the wrong number of fields", async () => {
    const e = await refusal(loadDataset(root, put(HEADER + "30,1,1,north\n")), "DATASET_SCHEMA_VIOLATION");
    expect(e.message).toMatch(/row 1: has 4 fields, the schema declares 5/);
  });

  it("refuses malformed CSV by code and row only", async () => {
    const e = await refusal(loadDataset(root, put(HEADER + '30,1,1,"north"x,well\n')), "DATASET_MALFORMED");
    expect(e.message).toMatch(/row 1: CSV syntax error \(CSV_INVALID_CLOSING_QUOTE\)/);
  });

  it("enforces max_rows and min_rows", async () => {
    const rows = "30,1,1,north,well\n".repeat(4);
    expect((await refusal(loadDataset(root, put(HEADER + rows, smallSchema({ max_rows: 3 }))), "DATASET_SCHEMA_VIOLATION")).message).toMatch(
      /more than max_rows \(3\)/,
    );
    expect((await refusal(loadDataset(root, put(HEADER + rows, smallSchema({ min_rows: 5 }))), "DATASET_SCHEMA_VIOLATION")).message).toMatch(
      /fewer than min_rows \(5\)/,
    );
    expect((await loadDataset(root, put(HEADER + rows, smallSchema({ min_rows: 4, max_rows: 4 })))).dataset.rows).toBe(4);
  });

  it("lists the first ten violations and counts the rest", async () => {
    const e = await refusal(loadDataset(root, put(HEADER + "x,1,1,north,well\n".repeat(25))), "DATASET_SCHEMA_VIOLATION");
    expect(e.issues).toHaveLength(10);
    expect(e.totalIssues).toBe(25);
    expect(e.issues.map((i) => i.row)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(e.message).toMatch(/\(and 15 more\)/);
  });

  it("refuses a gzip CSV whose content is too large once decompressed", async () => {
    const body = gzipSync(HEADER + "30,1,1,north,well\n".repeat(1000));
    await refusal(loadDataset(root, put(body, smallSchema(), "csv.gz"), { maxDecompressedBytes: 1000 }), "DATASET_TOO_LARGE");
    expect((await loadDataset(root, put(body, smallSchema(), "csv.gz"))).dataset.rows).toBe(1000);
  });
});

describe("CANARY: no cell value ever reaches an error", () => {
  // Unique strings and numbers planted in bad rows; none may appear anywhere in the error.
  const canaries = {
    text: "CANARY_q7Zx41",
    number: "-9137.0461",
    bigInt: "7777777123",
    category: "CANARY_site_Kp2",
    label: "CANARY_label_Wm9",
    header: "CANARY_hdr_Jd3",
    quote: "CANARY_quote_Vb8",
    fields: "CANARY_extra_Ns5",
  };

  const cases: [string, string][] = [
    ["bad float", `${canaries.text},1,1,north,well`],
    ["out of range", `${canaries.number},1,1,north,well`],
    ["int over max", `30,1,${canaries.bigInt},north,well`],
    ["unknown category", `30,1,1,${canaries.category},well`],
    ["unknown label", `30,1,1,north,${canaries.label}`],
    ["extra field", `30,1,1,north,well,${canaries.fields}`],
  ];

  it.each(cases)("%s", async (_what, row) => {
    const e = await refusal(loadDataset(root, put(HEADER + "30,1,1,north,well\n" + row + "\n")), "DATASET_SCHEMA_VIOLATION");
    const all = everythingIn(e);
    for (const c of Object.values(canaries)) expect(all).not.toContain(c);
    expect(all).toContain("row 2");
  });

  it("in a header mismatch", async () => {
    const e = await refusal(loadDataset(root, put(`age,dose,visits,${canaries.header},outcome\n`)), "DATASET_SCHEMA_VIOLATION");
    expect(everythingIn(e)).not.toContain(canaries.header);
  });

  it("in a first data row mistaken for a header", async () => {
    const e = await refusal(loadDataset(root, put(`${canaries.number},1,1,${canaries.category},well\n`)), "DATASET_SCHEMA_VIOLATION");
    const all = everythingIn(e);
    expect(all).not.toContain(canaries.number);
    expect(all).not.toContain(canaries.category);
  });

  it("in a CSV syntax error (csv-parse quotes the text; the Sentry must not)", async () => {
    const e = await refusal(loadDataset(root, put(HEADER + `30,1,1,"north"${canaries.quote},well\n`)), "DATASET_MALFORMED");
    expect(everythingIn(e)).not.toContain(canaries.quote);
    expect(everythingIn(e)).not.toContain("CANARY");
  });

  it("in many violations at once", async () => {
    const rows = cases.map(([, r]) => r).join("\n") + "\n";
    const e = await refusal(loadDataset(root, put(HEADER + rows)), "DATASET_SCHEMA_VIOLATION");
    expect(e.totalIssues).toBe(cases.length);
    expect(everythingIn(e)).not.toContain("CANARY");
    for (const c of Object.values(canaries)) expect(everythingIn(e)).not.toContain(c);
  });
});
