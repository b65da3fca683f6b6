import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../errors.js";
import { parseContract } from "./contract.js";
import { DatasetSchema, type DatasetSchemaInput } from "./dataset.js";

const valid: DatasetSchemaInput = {
  format: "csv",
  columns: [
    { name: "x", type: "float", min: 0, max: 1 },
    { name: "n", type: "int" },
    { name: "y", type: "category", values: ["a", "b"] },
  ],
  label: { column: "y", classes: ["b", "a"] },
};

function rules(input: unknown): { path: string; rule: string }[] {
  try {
    parseContract(DatasetSchema, input, "dataset schema");
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return (e as ValidationError).issues;
  }
  throw new Error("expected a validation error");
}

const patched = (patch: object) => ({ ...valid, ...patch });
const col = (i: number, c: object) => patched({ columns: (valid as { columns: object[] }).columns.map((x, j) => (j === i ? c : x)) });

describe("DatasetSchema", () => {
  it("accepts a valid schema and fills defaults", () => {
    const s = parseContract(DatasetSchema, valid, "dataset schema");
    if (s.format !== "csv") throw new Error("unreachable");
    expect(s.header).toBe(true);
    expect(s.delimiter).toBe(",");
    expect(s.max_rows).toBe(1_000_000);
    expect(s.columns[0].nullable).toBe(false);
  });

  it("accepts the bundled schema files", () => {
    for (const f of ["breast-cancer-wisconsin", "digits"]) {
      const doc = JSON.parse(readFileSync(new URL(`../../data/${f}.schema.json`, import.meta.url), "utf8"));
      expect(() => parseContract(DatasetSchema, doc, f)).not.toThrow();
    }
  });

  it.each([
    ["min above max", col(0, { name: "x", type: "float", min: 2, max: 1 }), /min|max/, "columns.0.min"],
    ["category without values", col(2, { name: "y", type: "category" }), /required/, "columns.2.values"],
    ["min on a category", col(2, { name: "y", type: "category", values: ["a", "b"], min: 0 }), /numeric/, "columns.2.min"],
    ["values on a float", col(0, { name: "x", type: "float", values: ["a"] }), /category/, "columns.0.values"],
    ["fractional bound on an int", col(1, { name: "n", type: "int", max: 2.5 }), /integer/, "columns.1.max"],
    ["non-finite allowed on an int", col(1, { name: "n", type: "int", allow_non_finite: true }), /float/, "columns.1.allow_non_finite"],
    ["duplicate values", col(2, { name: "y", type: "category", values: ["a", "a"] }), /duplicates/, "columns.2.values"],
    ["an unknown type", col(1, { name: "n", type: "double" }), /float/, "columns.1.type"],
    ["a column name with a comma", col(0, { name: "x,z", type: "float" }), /letters/, "columns.0.name"],
    ["a control character in a value", col(2, { name: "y", type: "category", values: ["a\u0007", "b"] }), /control/, "columns.2.values.0"],
    ["duplicate column names", patched({ columns: [...(valid as { columns: object[] }).columns, { name: "x", type: "int" }] }), /unique/, "columns"],
    ["a missing label column", patched({ label: { column: "z", classes: ["a", "b"] } }), /declared column/, "label.column"],
    ["classes that differ from the values", patched({ label: { column: "y", classes: ["a", "c"] } }), /exactly/, "label.classes"],
    ["a single class", patched({ label: { column: "y", classes: ["a"] } }), /two classes/, "label.classes"],
    ["a float label", patched({ label: { column: "x", classes: ["0", "1"] } }), /category or int/, "label.column"],
    ["a non-canonical int class", patched({ label: { column: "n", classes: ["0", "01"] } }), /canonical/, "label.classes.1"],
    ["the label among the features", patched({ features: ["x", "y"] }), /label/, "features.1"],
    ["an unknown feature", patched({ features: ["q"] }), /declared column/, "features.0"],
    ["min_rows above max_rows", patched({ min_rows: 10, max_rows: 5 }), /max_rows/, "min_rows"],
    ["max_rows above the ceiling", patched({ max_rows: 1e9 }), /<=/, "max_rows"],
    ["a bad sha256", patched({ sha256: "ABC" }), /SHA-256/, "sha256"],
    ["an unknown field", patched({ comment: "x" }), /unknown field/, ""],
    ["an unknown format", patched({ format: "parquet" }), /./, "format"],
  ])("refuses %s", (_what, input, rule, path) => {
    const issues = rules(input);
    const hit = issues.find((i) => i.path === path);
    expect(hit, JSON.stringify(issues)).toBeDefined();
    expect(hit!.rule).toMatch(rule);
  });

  it("accepts an IDX schema and refuses a labels_file with a path", () => {
    const idx = { format: "idx", labels_file: "t10k-labels-idx1-ubyte.gz", classes: ["a", "b"] };
    expect(parseContract(DatasetSchema, idx, "s").format).toBe("idx");
    expect(rules({ ...idx, labels_file: "../x" })[0].path).toBe("labels_file");
    expect(rules({ ...idx, labels_file: "sub/x" })[0].path).toBe("labels_file");
  });
});
