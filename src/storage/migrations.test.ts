import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUDGET_LEDGER_MIGRATIONS, BudgetLedger } from "../privacy/budget-ledger.js";
import { describeOnPostgres } from "../../test/support/postgres-server.js";
import { openDatabase, type Database } from "./database.js";
import { migrate, type Migration } from "./migrations.js";
import { schemaScoped } from "./schema-scope.js";

const root = new URL("../..", import.meta.url).pathname;

/** Plain DDL: each of these fails if it runs a second time, so "applied once" is observable. */
const THREE: Migration[] = [
  { version: 1, name: "jobs", sql: "create table jobs (id text primary key)" },
  { version: 2, name: "rounds", sql: "create table rounds (job_id text, round integer)" },
  { version: 3, name: "job status", sql: "alter table jobs add column status text" },
];

const recorded = async (db: Database, component: string) =>
  (
    await db.query<{ version: number; name: string }>(
      "select version, name from schema_migrations where component = $1 order by version",
      [component],
    )
  ).map((r) => `${r.version} ${r.name}`);

function behavesLikeAMigrationRunner(open: () => Promise<Database>) {
  let db: Database;
  beforeAll(async () => {
    db = await open();
  });
  afterAll(() => db.close());

  it("applies each migration once, in order, and an up-to-date database is only read", async () => {
    const s = await schemaScoped(db, "once");
    expect(await migrate(s, "coordinator", THREE.slice(0, 2))).toEqual([1, 2]);
    expect(await migrate(s, "coordinator", THREE)).toEqual([3]);
    expect(await migrate(s, "coordinator", THREE)).toEqual([]);
    expect(await recorded(s, "coordinator")).toEqual(["1 jobs", "2 rounds", "3 job status"]);
    await s.query("insert into jobs (id, status) values ('j', 'queued')");
  });

  it("keeps components apart: one's versions are not another's", async () => {
    const s = await schemaScoped(db, "components");
    await migrate(s, "coordinator", THREE);
    const audit: Migration[] = [{ version: 1, name: "entries", sql: "create table entries (n int)" }];
    expect(await migrate(s, "audit", audit)).toEqual([1]);
    expect(await recorded(s, "audit")).toEqual(["1 entries"]);
  });

  it("rolls a failing migration back whole, records nothing of it, and runs none after it", async () => {
    const s = await schemaScoped(db, "failing");
    const broken: Migration[] = [
      THREE[0],
      { version: 2, name: "half", sql: "create table half (n int); select no_such_function()" },
      { ...THREE[1], version: 3 },
    ];
    await expect(migrate(s, "coordinator", broken)).rejects.toThrow(/no_such_function/);
    expect(await recorded(s, "coordinator")).toEqual(["1 jobs"]);
    const [{ half, rounds }] = await s.query<{ half: boolean; rounds: boolean }>(
      "select to_regclass('half') is not null as half, to_regclass('rounds') is not null as rounds",
    );
    expect({ half, rounds }).toEqual({ half: false, rounds: false });
  });

  it("refuses an applied migration that was edited, and a database migrated by a newer build", async () => {
    const s = await schemaScoped(db, "mismatch");
    await migrate(s, "coordinator", THREE);
    const edited = [THREE[0], { ...THREE[1], sql: "create table rounds (job_id text)" }, THREE[2]];
    await expect(migrate(s, "coordinator", edited)).rejects.toMatchObject({
      code: "MIGRATION_CHANGED",
      message: expect.stringContaining("coordinator migration 2 (rounds)"),
    });
    await expect(migrate(s, "coordinator", THREE.slice(0, 2))).rejects.toMatchObject({
      code: "MIGRATION_FROM_NEWER_VERSION",
      message: expect.stringContaining("at migration 3; this build knows up to 2"),
    });
  });

  it("refuses a migration list that is not numbered 1, 2, 3, ...", async () => {
    const s = await schemaScoped(db, "badlist");
    await expect(migrate(s, "coordinator", [THREE[0], THREE[2]])).rejects.toMatchObject({
      code: "MIGRATION_LIST_INVALID",
    });
    const [{ present }] = await s.query<{ present: boolean }>(
      "select to_regclass('jobs') is not null as present",
    );
    expect(present).toBe(false);
  });

  it("adopts a privacy ledger created inline by an older build unchanged, rows and all", async () => {
    const s = await schemaScoped(db, "legacy");
    // The ledger as the first builds wrote it: no delta, no resets, no migrations table.
    await s.exec(`
      create table privacy_budget_ledger (
        id bigserial primary key, dataset_id text not null, job_id text not null,
        noise_multiplier double precision not null, sample_rate double precision not null,
        steps integer not null, state text not null,
        created_at timestamptz not null default now(), updated_at timestamptz not null default now());
      insert into privacy_budget_ledger (dataset_id, job_id, noise_multiplier, sample_rate, steps, state)
        values ('records:v1:abc', 'old-job', 1.1, 0.01, 120, 'settled');`);
    const ledger = await BudgetLedger.open(s);
    expect(await ledger.state("records:v1:abc")).toEqual({
      history: [{ noiseMultiplier: 1.1, sampleRate: 0.01, steps: 120 }],
      delta: 1e-5,
    });
    expect(await recorded(s, "privacy_budget_ledger")).toEqual(
      BUDGET_LEDGER_MIGRATIONS.map((m) => `${m.version} ${m.name}`),
    );
    await ledger.reset("records:v1:abc", "test");
    expect((await ledger.state("records:v1:abc")).history).toEqual([]);
  });

  it("adopts a ledger created inline by the build just before migrations (same tables)", async () => {
    const s = await schemaScoped(db, "inline");
    await s.exec(BUDGET_LEDGER_MIGRATIONS[0].sql);
    await s.query(
      `insert into privacy_budget_ledger (dataset_id, job_id, noise_multiplier, sample_rate, steps, state, delta)
       values ('d', 'j', 1.0, 0.02, 40, 'reserved', 1e-6)`,
    );
    const ledger = await BudgetLedger.open(s);
    expect(await ledger.jobs("d")).toEqual([{ jobId: "j", steps: 40, reserved: true }]);
    expect((await ledger.state("d")).delta).toBe(1e-6);
  });
}

describe("migrate, on embedded PostgreSQL (PGlite)", () => {
  behavesLikeAMigrationRunner(() => openDatabase({ workspace: "", url: "", memory: true }));
});

describeOnPostgres("migrate, on a real PostgreSQL server", (server) => {
  let url = "";
  beforeAll(async () => {
    url = await server().freshDatabase();
  });

  describe("the same rules", () => {
    behavesLikeAMigrationRunner(() => openDatabase({ workspace: "", url }));
  });

  it("applies each migration exactly once when several processes start at once", async () => {
    const raceUrl = await server().freshDatabase();
    const dir = mkdtempSync(join(tmpdir(), "enclave-migrate-"));
    const script = join(dir, "starter.mts");
    writeFileSync(
      script,
      `import { openDatabase } from ${JSON.stringify(join(root, "src/storage/database.ts"))};
       import { migrate } from ${JSON.stringify(join(root, "src/storage/migrations.ts"))};
       import { BudgetLedger } from ${JSON.stringify(join(root, "src/privacy/budget-ledger.ts"))};
       const [url, t0] = [process.argv[2], Number(process.argv[3])];
       const db = await openDatabase({ workspace: "", url });
       while (Date.now() < t0) await new Promise((r) => setTimeout(r, 1));
       const three = ${JSON.stringify(THREE)};
       const [applied] = await Promise.all([migrate(db, "coordinator", three), BudgetLedger.open(db)]);
       console.log(JSON.stringify(applied));
       await db.close();`,
    );
    const t0 = Date.now() + 4000; // after every starter has connected
    const starters = Array.from({ length: 4 }, () => run(script, [raceUrl, String(t0)]));
    const results = await Promise.all(starters);
    for (const r of results) expect(r.code, r.out).toBe(0);
    const applied = results.flatMap((r) => JSON.parse(r.out.trim().split("\n").pop()!) as number[]);
    expect(applied.sort()).toEqual([1, 2, 3]);
    const db = await openDatabase({ workspace: "", url: raceUrl });
    try {
      expect(await recorded(db, "coordinator")).toEqual(["1 jobs", "2 rounds", "3 job status"]);
      expect(await recorded(db, "privacy_budget_ledger")).toHaveLength(BUDGET_LEDGER_MIGRATIONS.length);
    } finally {
      await db.close();
    }
  });
});

function run(file: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ["--import", "tsx", file, ...args], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (b) => (out += b));
    child.stderr.on("data", (b) => (out += b));
    child.on("error", rej);
    child.on("exit", (code) => res({ code: code ?? -1, out }));
  });
}
