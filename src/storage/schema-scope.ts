import { StorageError } from "./errors.js";
import type { Database } from "./database.js";

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * A view of `db` in which every statement runs with `search_path` set to `schema` alone: many
 * ledgers (e.g. the simulated sites of one simulation) share one embedded PostgreSQL, each in its
 * own schema, with the same tables, guard and accounting as a database of its own. Each statement
 * runs in a transaction that sets the path locally, so views never see each other's tables even
 * when their queries interleave. Closing a view leaves `db` open: its owner closes it.
 */
export async function schemaScoped(db: Database, schema: string): Promise<Database> {
  if (!SCHEMA_NAME.test(schema))
    throw new StorageError(
      "DATABASE_SCHEMA_NAME",
      "schema name must be 1-63 of [a-z0-9_], not starting with a digit",
    );
  await db.exec(`create schema if not exists ${schema}`);
  const scoped = <T>(fn: (tx: Pick<Database, "query" | "exec">) => Promise<T>): Promise<T> =>
    db.transaction(async (tx) => {
      await tx.exec(`set local search_path to ${schema}`);
      return fn(tx);
    });
  return {
    kind: db.kind,
    query: <T>(sql: string, params?: unknown[]) => scoped((tx) => tx.query<T>(sql, params)),
    exec: (sql: string) => scoped((tx) => tx.exec(sql)),
    transaction: scoped,
    close: async () => {},
  };
}
