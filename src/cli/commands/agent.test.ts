import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BudgetLedger } from "../../privacy/budget-ledger.js";
import { lockEmbeddedDatabase, openDatabase } from "../../storage/database.js";

/**
 * `enclave agent` as a real process over real HTTP. Runs the build (`npm test` builds first).
 * TEE detection is pointed at an empty directory (ENCLAVE_TEE_DETECT_ROOT) so "no TEE" holds on
 * any machine, hardware or not.
 */

const BIN = fileURLToPath(new URL("../../../bin/enclave.js", import.meta.url));
const DATA = fileURLToPath(new URL("../../../data/", import.meta.url));
const noTeeRoot = mkdtempSync(join(tmpdir(), "no-tee-"));

/**
 * An initialised, empty embedded database copied into each workspace: a fresh PGlite directory
 * costs seconds of initdb per agent, a copy about one.
 */
let dbTemplate = "";
beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "agent-db-"));
  await (await openDatabase({ workspace: dir, url: "" })).close();
  dbTemplate = join(dir, "db");
});
const seeded = (workspace: string) => {
  cpSync(dbTemplate, join(workspace, "db"), { recursive: true });
  return workspace;
};

/** A free loopback port: bind a throwaway server to port 0 and release it. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Site {
  dir: string;
  workspace: string;
  conf: string;
}

function site(config: Record<string, unknown> | string, name = "conf.yaml"): Site {
  const dir = mkdtempSync(join(tmpdir(), "agent-cli-"));
  mkdirSync(join(dir, "data"));
  const conf = join(dir, name);
  writeFileSync(
    conf,
    typeof config === "string"
      ? config
      : JSON.stringify({ node_id: "hospital-a", data_root: "data", ...config }),
  );
  return { dir, workspace: join(dir, "ws"), conf };
}

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(args: string[]): Run {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ENCLAVE_TEE_DETECT_ROOT: noTeeRoot, DATABASE_URL: "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (b) => (out += b));
  child.stderr!.on("data", (b) => (err += b));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Runs to completion (for the refusals). */
async function runToExit(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = start(args);
  const { code } = await r.exited;
  return { code, stdout: r.stdout(), stderr: r.stderr() };
}

type LogLine = Record<string, unknown> & { msg: string; level: number };

function logLines(text: string): LogLine[] {
  return text
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as LogLine);
}

/** Wait for the "agent started" log line (or the process's early exit). */
async function started(r: Run): Promise<LogLine> {
  const deadline = Date.now() + 60_000;
  let exit: unknown = null;
  void r.exited.then((e) => (exit = e));
  while (Date.now() < deadline) {
    const line = logLines(r.stderr()).find((l) => l.msg.startsWith("agent started"));
    if (line) return line;
    if (exit) throw new Error(`agent exited early: ${JSON.stringify(exit)}\n${r.stderr()}`);
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`agent did not start:\n${r.stderr()}`);
}

async function stopWith(r: Run, signal: NodeJS.Signals) {
  r.child.kill(signal);
  return r.exited;
}

describe("enclave agent: refusals", () => {
  it("refuses to start without a TEE and without --simulation/--insecure (NO_TEE, exit 1)", async () => {
    const s = site({});
    const r = await runToExit(["agent", "--workspace", s.workspace, "--conf", s.conf]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^enclave: error \[NO_TEE\]: no TEE hardware detected \(checked .*\/dev\/sev-guest/m,
    );
    expect(r.stderr).toMatch(/pass --simulation for a local simulation or --insecure/);
    // It refused before opening the workspace: no ledger was created.
    expect(existsSync(join(s.workspace, "db"))).toBe(false);
  });

  it("rejects --simulation together with --insecure", async () => {
    const s = site({});
    const r = await runToExit([
      "agent",
      "--workspace",
      s.workspace,
      "--conf",
      s.conf,
      "--simulation",
      "--insecure",
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^enclave: error \[MODE_CONFLICT\]: --simulation and --insecure cannot be combined/m,
    );
  });

  it("rejects bad config files, naming the field and never echoing its value", async () => {
    const cases: [Site, RegExp][] = [
      [site({ sidecar_port: "VALUE-CANARY-1" }), /invalid agent config: sidecar_port: /],
      [site({ log_levle: "VALUE-CANARY-2" }), /unknown field\(s\) "log_levle" not allowed/],
      [site({ node_id: "../VALUE-CANARY-3" }), /invalid agent config: node_id: must be letters, digits/],
      [
        site({ data_root: "VALUE-CANARY-4-missing" }),
        /invalid agent config: data_root: directory cannot be read \(ENOENT\)/,
      ],
      [
        site("node_id: a\nnode_id: VALUE-CANARY-5\ndata_root: data\n"),
        /not valid JSON or YAML \(DUPLICATE_KEY at line 2, column 1\)/,
      ],
      [site('{"node_id": "VALUE-CANARY-6", "data_root": '), /not valid JSON or YAML/],
      [site({ accountant: "VALUE-CANARY-7" }), /invalid agent config: accountant: /],
    ];
    const results = await Promise.all(
      cases.map(([s]) => runToExit(["agent", "--workspace", s.workspace, "--conf", s.conf, "--simulation"])),
    );
    for (const [i, [, message]] of cases.entries()) {
      const r = results[i];
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/^enclave: error \[VALIDATION_FAILED\]: /);
      expect(r.stderr).toMatch(message);
      expect(r.stderr + r.stdout).not.toMatch(/VALUE-CANARY/);
    }
    const missing = await runToExit(["agent", "--workspace", "ws", "--conf", join(noTeeRoot, "nope.yaml")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/\[CONFIG_UNREADABLE\]: agent config file cannot be read \(ENOENT\)/);
  });
});

describe("enclave agent --simulation", () => {
  let run: Run;
  let base: string;
  let port: number;
  let s: Site;
  let startLine: LogLine;
  beforeAll(async () => {
    port = await freePort();
    s = site("node_id: hospital-a\ndata_root: data\nlog_level: debug\n");
    run = start([
      "agent",
      "--workspace",
      seeded(s.workspace),
      "--conf",
      s.conf,
      "--simulation",
      "--port",
      String(port),
    ]);
    startLine = await started(run);
    base = `http://127.0.0.1:${port}`;
  });
  afterAll(() => {
    if (run.child.exitCode === null) run.child.kill("SIGKILL");
  });

  it("labels itself SIMULATED and, without a kit, says it serves the sidecar only", () => {
    expect(startLine).toMatchObject({
      mode: "SIMULATED",
      hardware_type: "SIMULATED",
      host: "127.0.0.1",
      port,
    });
    expect(startLine.msg).toMatch(/SIMULATED: no hardware protection/);
    expect(startLine.msg).toMatch(/no --kit: serving the sidecar only, joining no federation/);
    const attested = logLines(run.stderr()).find((l) => l.msg.startsWith("attested"));
    expect(attested?.msg).toMatch(/SIMULATED/);
  });

  it("GET /health is 200 ATTESTED", async () => {
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ATTESTED", trusted: true });
  });

  it("GET /attestation is the SIMULATED, TRUSTED report of this node", async () => {
    const res = await fetch(`${base}/attestation`);
    expect(res.status).toBe(200);
    const report = (await res.json()) as Record<string, string>;
    expect(report).toMatchObject({ node_id: "hospital-a", hardware_type: "SIMULATED", status: "TRUSTED" });
    expect(report.measurement_hash).toMatch(/^[0-9a-f]{96}$/); // SHA-384 of the build
    expect(report.enclave_signature).toMatch(/^[0-9a-f]{128}$/); // Ed25519
  });

  it("GET /privacy/budget shows epsilon, target, ceiling and delta (nothing spent, no job)", async () => {
    const budget = await (await fetch(`${base}/privacy/budget`)).json();
    expect(budget).toMatchObject({ epsilon: 0, target_epsilon: 5, ceiling: 5, delta: 0, dataset_id: null });
  });

  it("GET /metrics is Prometheus text", async () => {
    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toMatch(/^enclave_attested 1$/m);
    expect(text).toMatch(/^enclave_attestations_total 1$/m);
    expect(text).toMatch(/^# TYPE enclave_privacy_epsilon_spent gauge$/m);
  });

  it("listens on 127.0.0.1 only", async () => {
    const external = Object.values(networkInterfaces())
      .flat()
      .filter((i) => i && !i.internal)
      .map((i) => i!);
    for (const i of external) {
      const host = i.family === "IPv6" ? `[${i.address}]` : i.address;
      await expect(fetch(`http://${host}:${port}/health`), host).rejects.toThrow();
    }
    // ::1 is loopback too, but the sidecar binds the IPv4 loopback address alone.
    await expect(fetch(`http://[::1]:${port}/health`)).rejects.toThrow();
  });

  it("shuts down cleanly on SIGTERM: exit 0, sidecar closed, ledger database unlocked", async () => {
    const { code, signal } = await stopWith(run, "SIGTERM");
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    const lines = logLines(run.stderr());
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(["shutting down", "agent stopped"]));
    expect(lines.find((l) => l.msg === "shutting down")?.signal).toBe("SIGTERM");
    await (
      await lockEmbeddedDatabase(join(s.workspace, "db"))
    )(); // the lock is free again
    expect(existsSync(join(s.workspace, "db"))).toBe(true);
    await expect(fetch(`${base}/health`)).rejects.toThrow();
  });
});

describe("enclave agent: sidecar port taken", () => {
  it("exits 1 with SIDECAR_BIND_FAILED and releases the ledger database", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const { port } = blocker.address() as AddressInfo;
    try {
      const s = site({ sidecar_port: port });
      const r = await runToExit([
        "agent",
        "--workspace",
        seeded(s.workspace),
        "--conf",
        s.conf,
        "--simulation",
      ]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        new RegExp(
          `^enclave: error \\[SIDECAR_BIND_FAILED\\]: cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE$`,
          "m",
        ),
      );
      await (
        await lockEmbeddedDatabase(join(s.workspace, "db"))
      )(); // the lock is free again
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });
});

describe("enclave agent --insecure", () => {
  it("runs, but /health is 503 with the policy's reason and it re-attests on the policy's interval", async () => {
    const port = await freePort();
    const s = site({ trust_policy: "policy.yaml", sidecar_port: port });
    writeFileSync(join(s.dir, "policy.yaml"), "reattest_interval_seconds: 1\n");
    const run = start(["agent", "--workspace", seeded(s.workspace), "--conf", s.conf, "--insecure"]);
    try {
      const line = await started(run);
      expect(line).toMatchObject({ mode: "INSECURE", hardware_type: "INSECURE", status: "UNTRUSTED", port });
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      expect(res.status).toBe(503);
      const body = (await res.json()) as { status: string; trusted: boolean; reason: string };
      expect(body).toMatchObject({ status: "NOT_ATTESTED", trusted: false });
      expect(body.reason).toMatch(/^attestation UNTRUSTED \(INSECURE\): policy\.kind: insecure evidence/);
      expect(body.reason).toMatch(/allow_insecure: false/);
      expect(body.reason).toMatch(/this agent refuses to train/);
      const report = await (await fetch(`http://127.0.0.1:${port}/attestation`)).json();
      expect(report).toMatchObject({ hardware_type: "INSECURE", status: "UNTRUSTED" });
      // Re-attestation every reattest_interval_seconds (1 s here): the counter climbs.
      let count = 0;
      for (let i = 0; i < 100 && count < 2; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        count = Number(/^enclave_attestations_total (\d+)$/m.exec(text)?.[1]);
      }
      expect(count).toBeGreaterThanOrEqual(2);
      const warn = logLines(run.stderr()).find((l) => l.msg.startsWith("attestation not trusted"));
      expect(warn).toMatchObject({ level: 40, failed_checks: ["policy.kind"] });
      expect((await stopWith(run, "SIGINT")).code).toBe(0);
    } finally {
      if (run.child.exitCode === null) run.child.kill("SIGKILL");
    }
  });
});

describe("enclave agent: budget of the configured dataset", () => {
  it("shows the spent epsilon recorded in the workspace ledger before any job runs", async () => {
    const port = await freePort();
    const s = site({ dataset_id: "cohort/2024.csv", sidecar_port: port });
    mkdirSync(join(s.dir, "data", "cohort"));
    cpSync(join(DATA, "breast-cancer-wisconsin.csv"), join(s.dir, "data", "cohort", "2024.csv"));
    cpSync(
      join(DATA, "breast-cancer-wisconsin.schema.json"),
      join(s.dir, "data", "cohort", "2024.schema.json"),
    );
    // Abadi et al.'s MNIST setting, recorded as one settled segment: q = 256/60000, sigma = 1.1,
    // 14062 steps; at delta 1e-5 RDP gives 2.5966 (Opacus). Recorded under the dataset id, the key
    // agents used before records identities: the agent adopts it for the records (migration).
    const db = await openDatabase({ workspace: seeded(s.workspace), url: "" });
    try {
      const ledger = await BudgetLedger.open(db);
      const r = await ledger.reserve(
        "cohort/2024.csv",
        "earlier-job",
        { noiseMultiplier: 1.1, sampleRate: 256 / 60000 },
        () => 14062,
      );
      await ledger.settle(r.id, 14062);
      await ledger.reserve("another.csv", "other-job", { noiseMultiplier: 0.5, sampleRate: 0.5 }, () => 1000);
    } finally {
      await db.close();
    }
    const run = start(["agent", "--workspace", s.workspace, "--conf", s.conf, "--simulation"]);
    try {
      expect(await started(run)).toMatchObject({ dataset_id: "cohort/2024.csv" });
      const budget = (await (await fetch(`http://127.0.0.1:${port}/privacy/budget`)).json()) as Record<
        string,
        unknown
      >;
      expect(budget).toMatchObject({
        target_epsilon: 5,
        ceiling: 5,
        delta: 1e-5,
        dataset_id: "cohort/2024.csv",
      });
      expect((budget.epsilon as number).toFixed(4)).toBe("2.5966");
      expect(budget.remaining).toBeCloseTo(5 - (budget.epsilon as number), 12);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const spent = Number(/^enclave_privacy_epsilon_spent (\S+)$/m.exec(metrics)?.[1]);
      expect(spent).toBe(budget.epsilon);
      expect((await stopWith(run, "SIGTERM")).code).toBe(0);
    } finally {
      if (run.child.exitCode === null) run.child.kill("SIGKILL");
    }
  });
});
