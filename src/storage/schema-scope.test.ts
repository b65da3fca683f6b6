import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BudgetLedger } from "../privacy/budget-ledger.js";
import { openDatabase, type Database } from "./database.js";
import { schemaScoped } from "./schema-scope.js";

describe("schemaScoped: many ledgers in one embedded PostgreSQL", () => {
  let db: Database;
  beforeAll(async () => {
    db = await openDatabase({ workspace: "", url: "", memory: true });
  });
  afterAll(() => db.close());

  it("keeps each site's ledger to itself, even with their reservations interleaved", async () => {
    const [a, b] = await Promise.all([
      schemaScoped(db, "site_0").then(BudgetLedger.open),
      schemaScoped(db, "site_1").then(BudgetLedger.open),
    ]);
    const seg = { noiseMultiplier: 1.1, sampleRate: 0.01 };
    await Promise.all([
      ...Array.from({ length: 5 }, () => a.reserve("d.csv", "job", seg, () => 10)),
      ...Array.from({ length: 3 }, () => b.reserve("d.csv", "job", seg, () => 7)),
    ]);
    expect((await a.history("d.csv")).map((s) => s.steps)).toEqual([10, 10, 10, 10, 10]);
    expect((await b.history("d.csv")).map((s) => s.steps)).toEqual([7, 7, 7]);
    // Reopening a site's schema finds its ledger: the tables are real, not per-view state.
    const again = await BudgetLedger.open(await schemaScoped(db, "site_1"));
    expect(await again.jobs("d.csv")).toEqual([{ jobId: "job", steps: 21, reserved: true }]);
    const [{ n }] = await db.query<{ n: number }>(
      "select count(*)::int as n from information_schema.tables where table_name = 'privacy_budget_ledger'",
    );
    expect(n).toBe(2);
  });

  it("refuses a schema name that is not a plain identifier", async () => {
    await expect(schemaScoped(db, 'x"; drop table y; --')).rejects.toMatchObject({
      code: "DATABASE_SCHEMA_NAME",
    });
  });
});
