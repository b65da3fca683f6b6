// `enclave schema infer`: a schema draft from the file, with no data value in it (nor on the
// terminal) beyond the category values the owner confirms with --categories.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cli } from "../../test/support/cli.js";
import { parseContract } from "../schemas/contract.js";
import { DatasetSchema } from "../schemas/dataset.js";
import { loadDataset } from "./load.js";

const dir = mkdtempSync(join(tmpdir(), "enclave-infer-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Planted values: none may appear in the schema or the output unless confirmed.
const CSV = [
  "age,weight_kg,site,smoker,outcome",
  "47,71.3,SECRET-WARD-7,yes,recovered",
  "83,58.25,SECRET-WARD-9,no,recovered",
  "29,,SECRET-WARD-7,no,relapsed",
  "61,94.125,SECRET-WARD-3,yes,relapsed",
].join("\n");
const PLANTED = ["47", "83", "29", "61", "71.3", "58.25", "94.125", "SECRET-WARD", "yes", "recovered", "relapsed"];

describe("enclave schema infer", () => {
  it("writes types, nullability and power-of-ten ranges, and no value of an unconfirmed column", async () => {
    writeFileSync(join(dir, "a.csv"), CSV);
    const r = await cli("schema", "infer", join(dir, "a.csv"));
    expect(r.code, r.err).toBe(0);
    const text = readFileSync(join(dir, "a.schema.json"), "utf8");
    for (const v of PLANTED) {
      expect(text, v).not.toContain(v);
      expect(r.out + r.err, v).not.toContain(v);
    }
    const s = JSON.parse(text);
    expect(s.columns).toEqual([
      { name: "age", type: "int", min: 0, max: 100 },
      { name: "weight_kg", type: "float", min: 0, max: 100, nullable: true },
      { name: "site", type: "category" },
      { name: "smoker", type: "category" },
      { name: "outcome", type: "category" },
    ]);
    expect(s.label).toEqual({ column: "outcome" });
    expect(r.out).toMatch(/site +category +3 distinct values, not written/);
    expect(r.out).toMatch(/--categories site,smoker,outcome/);
  });

  it("writes the values of the confirmed columns, and then the schema loads the file", async () => {
    writeFileSync(join(dir, "b.csv"), CSV.replaceAll(/SECRET-WARD-\d/g, "ward"));
    const r = await cli("schema", "infer", join(dir, "b.csv"), "--categories", "site,smoker,outcome");
    expect(r.code, r.err).toBe(0);
    const s = JSON.parse(readFileSync(join(dir, "b.schema.json"), "utf8"));
    expect(s.columns.find((c: { name: string }) => c.name === "smoker").values).toEqual(["no", "yes"]);
    expect(s.label).toEqual({ column: "outcome", classes: ["recovered", "relapsed"] });
    parseContract(DatasetSchema, s, "inferred schema");
    const { dataset } = await loadDataset(dir, "b.csv");
    expect(dataset.rows).toBe(4);
  });

  it("refuses to overwrite a schema without --force, and an unknown --label", async () => {
    const again = await cli("schema", "infer", join(dir, "a.csv"));
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/exists \(pass --force/);
    const bad = await cli("schema", "infer", join(dir, "a.csv"), "--label", "nope", "--force");
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/--label: names no column of the file: nope/);
  });
});
