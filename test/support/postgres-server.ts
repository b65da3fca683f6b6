import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe } from "vitest";

/** A real PostgreSQL server in a temporary directory, started by the test itself. */
export interface PostgresServer {
  url: string;
  /** A new, empty database on the server (test isolation): its URL. */
  freshDatabase(): Promise<string>;
  stop(): Promise<void>;
}

/** Debian's PostgreSQL binaries (initdb, postgres, pg_isready), or null with the reason they are absent. */
export function postgresBinaries(): { bin: string } | { missing: string } {
  const base = "/usr/lib/postgresql";
  const versions = existsSync(base) ? readdirSync(base).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) {
    const bin = join(base, v, "bin");
    if (existsSync(join(bin, "initdb")) && existsSync(join(bin, "postgres"))) return { bin };
  }
  return { missing: "no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)" };
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

/**
 * initdb + postgres on loopback. PostgreSQL refuses to run as root, so as root the server runs as
 * the `postgres` user (Debian's package creates it) over a directory handed to that user.
 */
export async function startPostgres(): Promise<PostgresServer> {
  const found = postgresBinaries();
  if ("missing" in found) throw new Error(found.missing);
  const dir = mkdtempSync(join(tmpdir(), "enclave-pg-"));
  const asRoot = userInfo().uid === 0;
  const cmd = (tool: string, args: string[]): [string, string[]] =>
    asRoot
      ? ["runuser", ["-u", "postgres", "--", join(found.bin, tool), ...args]]
      : [join(found.bin, tool), args];
  if (asRoot) {
    const pg = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    chownSync(dir, pg, gid);
  }
  const data = join(dir, "data");
  const [initdb, initArgs] = cmd("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  execFileSync(initdb, initArgs, { stdio: "ignore" });
  const port = await freePort();
  const [postgres, args] = cmd("postgres", [
    "-D",
    data,
    "-p",
    String(port),
    "-k",
    dir,
    "-c",
    "listen_addresses=127.0.0.1",
    "-c",
    "fsync=off",
    "-c",
    "max_connections=100",
  ]);
  const server: ChildProcess = spawn(postgres, args, { stdio: "ignore" });
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const { default: pg } = await import("pg");
  const deadline = Date.now() + 30_000;
  for (;;) {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      break;
    } catch (err) {
      await client.end().catch(() => {});
      if (Date.now() > deadline || server.exitCode !== null) {
        server.kill("SIGKILL");
        throw err;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  let databases = 0;
  return {
    url,
    async freshDatabase() {
      const name = `enclave_test_${process.pid}_${databases++}`;
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`create database ${name}`);
      } finally {
        await client.end();
      }
      return url.replace(/\/postgres$/, `/${name}`);
    },
    async stop() {
      if (server.exitCode === null) {
        const exited = new Promise((r) => server.once("exit", r));
        const [pgCtl, args] = cmd("pg_ctl", ["-D", data, "stop", "-m", "immediate", "-w"]);
        try {
          execFileSync(pgCtl, args, { stdio: "ignore", timeout: 30_000 });
        } catch {
          server.kill("SIGKILL");
        }
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A describe block that runs against one real PostgreSQL server started for it (and stopped after).
 * Without Debian's server binaries the block is skipped with the reason in its title, except under
 * CI, where `.ci/run` installs them: there a missing server fails the suite instead of passing it
 * silently.
 */
export function describeOnPostgres(title: string, body: (server: () => PostgresServer) => void): void {
  const bins = postgresBinaries();
  const missing = "missing" in bins && !process.env.CI ? bins.missing : undefined;
  describe.skipIf(missing !== undefined)(`${title}${missing ? ` (skipped: ${missing})` : ""}`, () => {
    let server: PostgresServer | undefined;
    beforeAll(async () => {
      server = await startPostgres();
    });
    afterAll(async () => server?.stop());
    body(() => {
      if (!server) throw new Error("the PostgreSQL server did not start");
      return server;
    });
  });
}
