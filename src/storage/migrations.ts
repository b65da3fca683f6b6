import { createHash } from "node:crypto";
import type { Database } from "./database.js";
import { StorageError } from "./errors.js";

/**
 * One schema change of a component. Versions run 1, 2, 3, ... per component; a shipped migration is
 * never edited (its SQL's hash is recorded, and a changed one is refused), only followed by another.
 */
export interface Migration {
  version: number;
  /** What the migration does, for a person reading `schema_migrations`. */
  name: string;
  sql: string;
}

type Tx = Pick<Database, "query" | "exec">;

/** The record of applied migrations, one row per component and version, in the current schema. */
const TABLE = `
  create table if not exists schema_migrations (
    component text not null,
    version integer not null check (version > 0),
    name text not null,
    checksum text not null,
    applied_at timestamptz not null default now(),
    primary key (component, version)
  )`;

/** Applied migrations: version to checksum. */
type Applied = Map<number, string>;

const checksum = (m: Migration) => createHash("sha256").update(m.sql).digest("hex");

/**
 * Brings `component`'s tables in `db` (its current schema) up to date: each migration not yet
 * applied runs once, in order, in its own transaction with its row in `schema_migrations`, so a
 * crash leaves it either applied and recorded or neither. Processes that start at once serialise on
 * an advisory lock per schema and re-read what is applied under it, so each migration runs once.
 * An up-to-date database (the common case) is only read: no lock, no DDL.
 * Returns the versions this call applied.
 */
export async function migrate(
  db: Database,
  component: string,
  migrations: readonly Migration[],
): Promise<number[]> {
  checkList(component, migrations);
  if (check(component, migrations, await readApplied(db, component, false))) return [];
  const done: number[] = [];
  for (const m of migrations) {
    const applied = await db.transaction(async (tx) => {
      await tx.query("select pg_advisory_xact_lock(hashtext('enclave-migrations:' || current_schema()))");
      await tx.exec(TABLE);
      const seen = await readApplied(tx, component, true);
      check(component, migrations, seen);
      if (seen.has(m.version)) return false;
      await tx.exec(m.sql);
      await tx.query(
        "insert into schema_migrations (component, version, name, checksum) values ($1, $2, $3, $4)",
        [component, m.version, m.name, checksum(m)],
      );
      return true;
    });
    if (applied) done.push(m.version);
  }
  return done;
}

/** What is recorded for `component`; nothing when the table does not exist yet (and `exists` is false). */
async function readApplied(tx: Tx, component: string, exists: boolean): Promise<Applied> {
  if (!exists) {
    const [{ present }] = await tx.query<{ present: boolean }>(
      "select to_regclass('schema_migrations') is not null as present",
    );
    if (!present) return new Map();
  }
  const rows = await tx.query<{ version: number; checksum: string }>(
    "select version, checksum from schema_migrations where component = $1",
    [component],
  );
  return new Map(rows.map((r) => [Number(r.version), r.checksum]));
}

/**
 * Refuses a database this build cannot safely run on (an applied migration that differs from the
 * shipped one, or a version this build does not know); true when every migration is applied.
 */
function check(component: string, migrations: readonly Migration[], applied: Applied): boolean {
  for (const [version, sum] of applied) {
    const m = migrations[version - 1];
    if (!m)
      throw new StorageError(
        "MIGRATION_FROM_NEWER_VERSION",
        `the database's ${component} tables are at migration ${version}; this build knows up to ${migrations.length}: run a newer coreason-enclave`,
      );
    if (checksum(m) !== sum)
      throw new StorageError(
        "MIGRATION_CHANGED",
        `${component} migration ${version} (${m.name}) applied to this database differs from the one this build ships`,
      );
  }
  return applied.size === migrations.length;
}

function checkList(component: string, migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1)
      throw new StorageError(
        "MIGRATION_LIST_INVALID",
        `${component} migrations must be numbered 1, 2, 3, ...: entry ${i} has version ${m.version}`,
      );
  });
}
