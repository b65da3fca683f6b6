import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { EnclaveError } from "../errors.js";

/**
 * The one SQL interface the project uses. `DATABASE_URL` selects a real PostgreSQL server (pg);
 * without it an embedded PostgreSQL (PGlite) lives under the workspace, so a laptop needs no server.
 */
export interface Database {
  readonly kind: "pglite" | "postgres";
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  exec(sql: string): Promise<void>;
  /** Runs `fn` in one transaction; it commits only if `fn` resolves. */
  transaction<T>(fn: (tx: Pick<Database, "query" | "exec">) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** Workspace directory; the embedded database lives in `<workspace>/db`. */
  workspace: string;
  /** Overrides DATABASE_URL. */
  url?: string;
}

export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const url = options.url ?? process.env.DATABASE_URL;
  if (url) return openPostgres(url);
  return openPglite(join(options.workspace, "db"));
}

async function openPostgres(url: string): Promise<Database> {
  const { default: pg } = await import("pg");
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  try {
    await pool.query("select 1");
  } catch (err) {
    await pool.end();
    // The URL may hold a password: never echo it.
    throw new EnclaveError(
      "DATABASE_UNAVAILABLE",
      `cannot connect to the PostgreSQL server in DATABASE_URL: ${(err as Error).message}`,
    );
  }
  return {
    kind: "postgres",
    async query<T>(sql: string, params?: unknown[]) {
      return (await pool.query(sql, params as unknown[])).rows as T[];
    },
    async exec(sql: string) {
      await pool.query(sql);
    },
    async transaction<T>(fn: (tx: Pick<Database, "query" | "exec">) => Promise<T>) {
      const client = await pool.connect();
      try {
        await client.query("begin");
        const out = await fn({
          query: async <R>(sql: string, params?: unknown[]) =>
            (await client.query(sql, params as unknown[])).rows as R[],
          exec: async (sql: string) => void (await client.query(sql)),
        });
        await client.query("commit");
        return out;
      } catch (err) {
        await client.query("rollback");
        throw err;
      } finally {
        client.release();
      }
    },
    async close() {
      await pool.end();
    },
  };
}

/**
 * PGlite is single-process: a second process opening the same directory would corrupt it,
 * so the directory is guarded by an exclusive lock file holding the owner's pid.
 */
function acquireLock(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, ".enclave-lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lock, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(lock, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const owner = Number(readFileSync(lock, "utf8"));
      if (owner && owner !== process.pid && isAlive(owner)) {
        throw new EnclaveError(
          "DATABASE_LOCKED",
          `the embedded database in ${dir} is in use by process ${owner}`,
        );
      }
      rmSync(lock, { force: true }); // stale lock of a dead process
    }
  }
  throw new EnclaveError("DATABASE_LOCKED", `cannot lock the embedded database in ${dir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function openPglite(dir: string): Promise<Database> {
  const release = acquireLock(dir);
  try {
    const { PGlite } = await import("@electric-sql/pglite");
    const db = new PGlite(dir);
    await db.waitReady;
    return {
      kind: "pglite",
      async query<T>(sql: string, params?: unknown[]) {
        return (await db.query<T>(sql, params)).rows;
      },
      async exec(sql: string) {
        await db.exec(sql);
      },
      async transaction<T>(fn: (tx: Pick<Database, "query" | "exec">) => Promise<T>) {
        return db.transaction(async (tx) =>
          fn({
            query: async <R>(sql: string, params?: unknown[]) => (await tx.query<R>(sql, params)).rows,
            exec: async (sql: string) => void (await tx.exec(sql)),
          }),
        );
      },
      async close() {
        try {
          await db.close();
        } finally {
          release();
        }
      },
    };
  } catch (err) {
    release();
    throw err;
  }
}
