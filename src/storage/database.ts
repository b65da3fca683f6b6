import { createHash } from "node:crypto";
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { StorageError } from "./errors.js";

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
  /**
   * An embedded database held in memory only, gone when closed (a simulation's sites: nothing of
   * theirs outlives the run). Ignores `workspace`; a URL still wins.
   */
  memory?: boolean;
}

export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const url = options.url ?? process.env.DATABASE_URL;
  if (url) return openPostgres(url);
  if (options.memory) return openPglite(undefined);
  checkWorkspace(options.workspace);
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
    throw new StorageError(
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

const LOCK_INFO = ".enclave-lock";

/** The workspace must be a directory (or not exist yet, under a directory). */
function checkWorkspace(workspace: string): void {
  for (const path of [workspace, join(workspace, "db")]) {
    let isDir: boolean;
    try {
      isDir = statSync(path).isDirectory();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") continue;
      throw new StorageError("WORKSPACE_INVALID", `the workspace cannot be used (${code})`);
    }
    if (!isDir)
      throw new StorageError("WORKSPACE_INVALID", "the workspace (--workspace) must be a directory");
  }
}

/**
 * PGlite is single-process: a second process opening the same directory would corrupt it (and lose
 * budget steps), so the directory is guarded by an exclusive lock the OS holds for us.
 *
 * On Linux the lock is an abstract-namespace Unix socket named after the directory's real path:
 * binding it is atomic, and the kernel releases it when the process dies, however it dies, so
 * there is no stale lock to recover and no window in which two processes both hold it. Elsewhere
 * it is a file created with O_EXCL; a stale one (its process gone) is never broken automatically,
 * since breaking it races, and the error says which file the operator may remove.
 * The lock file holds the owner's pid either way, for the error message.
 */
export async function lockEmbeddedDatabase(dir: string): Promise<() => Promise<void>> {
  mkdirSync(dir, { recursive: true });
  const info = join(dir, LOCK_INFO);
  if (process.platform !== "linux") return acquireFileLock(dir, info);
  const name = "\0coreason-enclave-db:" + createHash("sha256").update(realpathSync(dir)).digest("hex");
  const server = createServer();
  try {
    await new Promise<void>((res, rej) => {
      server.once("error", rej);
      server.listen(name, () => res());
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
    throw lockedError(dir, readOwner(info));
  }
  server.unref();
  writeFileSync(info, String(process.pid));
  return () => new Promise<void>((res) => server.close(() => res()));
}

function acquireFileLock(dir: string, info: string): () => Promise<void> {
  try {
    const fd = openSync(info, "wx");
    writeSync(fd, String(process.pid));
    closeSync(fd);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const owner = readOwner(info);
    if (owner && isAlive(owner)) throw lockedError(dir, owner);
    throw new StorageError(
      "DATABASE_LOCKED",
      `the embedded database in ${dir} has a lock file of a process that is gone (${info}); remove it once no process uses the database`,
    );
  }
  return async () => rmSync(info, { force: true });
}

function readOwner(info: string): number {
  try {
    return Number(readFileSync(info, "utf8").slice(0, 32)) || 0;
  } catch {
    return 0;
  }
}

function lockedError(dir: string, owner: number): StorageError {
  return new StorageError(
    "DATABASE_LOCKED",
    `the embedded database in ${dir} is in use by ${owner ? `process ${owner}` : "another process"}`,
  );
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function openPglite(dir: string | undefined): Promise<Database> {
  const release = dir === undefined ? () => {} : await lockEmbeddedDatabase(dir);
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
          await release();
        }
      },
    };
  } catch (err) {
    await release();
    throw err;
  }
}
