// `enclave poc` as a user runs it: one POC run (a coordinator and three agents as OS processes on
// loopback) shared by the assertions. Mid-run, an agent is SIGKILLed through its pid file: the
// supervisor restarts it, counts it, and the job completes. With --keep-running the SDK's
// orchestrate() then runs a second job on the same coordinator; SIGINT stops every child, and the
// coordinator's audit chain verifies afterwards.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { orchestrate } from "../../src/index.js";
import type { PocSummary } from "../../src/poc/poc.js";
import { ENCLAVE_BIN, runEnclave } from "../support/enclave-process.js";

const SITES = ["hospital-a", "hospital-b", "hospital-c"];
// Enough rounds (about 0.3 s each) for the killed agent to restart, re-attest and rejoin.
const ROUNDS = 40;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("enclave poc (real processes on loopback)", () => {
  let root: string;
  let w: string;
  let poc: ChildProcess;
  let summary: PocSummary;
  let killed = 0;
  const stderr: string[] = [];
  const pidOf = (name: string) => Number(readFileSync(join(w, "pids", `${name}.pid`), "utf8"));

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "enclave-poc-"));
    w = join(root, "poc");
    poc = spawn(
      process.execPath,
      [
        ENCLAVE_BIN,
        "poc",
        "--clients",
        "3",
        "--rounds",
        String(ROUNDS),
        "--workspace",
        w,
        "--port",
        "0",
      ].concat(["--json", "--keep-running"]),
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    createInterface({ input: poc.stderr! }).on("line", (line) => {
      stderr.push(line);
      // Mid-run, through its pid file, as an operator would.
      if (/^round {3}2\//.test(line) && !killed) {
        killed = pidOf("hospital-b");
        process.kill(killed, "SIGKILL");
      }
    });
    const first = await new Promise<string>((resolve, reject) => {
      createInterface({ input: poc.stdout! }).once("line", resolve);
      poc.once("exit", (code) => reject(new Error(`poc exited ${code}: ${stderr.join("\n")}`)));
    });
    summary = JSON.parse(first);
  }, 240_000);

  afterAll(() => {
    if (poc?.exitCode === null) poc.kill("SIGKILL");
    rmSync(root, { recursive: true, force: true });
  });

  it("runs the demo job to the end and prints a simulate-shaped summary with restarts", () => {
    expect(summary).toMatchObject({
      status: "completed",
      final: { accuracy: expect.any(Number), loss: expect.any(Number) },
      baseline: { accuracy: expect.any(Number), loss: expect.any(Number) },
      model_sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      job_id: expect.any(String),
      workspace: w,
    });
    expect(summary.rounds.map((r: { round: number }) => r.round)).toEqual(
      Array.from({ length: ROUNDS }, (_, i) => i + 1),
    );
    expect(summary.final.accuracy).toBeGreaterThan(0.8);
    expect(summary.baseline.accuracy).toBeGreaterThan(0.9);
    expect(summary.clients.map((c: { id: string }) => c.id)).toEqual(SITES);
    for (const c of summary.clients) {
      expect(c).toMatchObject({ epsilon_level: "example", delta: 1e-5, examples: expect.any(Number) });
      expect(c.epsilon).toBeGreaterThan(0);
      expect(c.epsilon).toBeLessThanOrEqual(3);
    }
    // The site that was killed left one round to the others and came back.
    const without = summary.rounds.filter((r: { clients: string[] }) => !r.clients.includes("hospital-b"));
    expect(without.length).toBeGreaterThanOrEqual(1);
    expect(summary.rounds.at(-1)!.clients).toEqual(SITES);
  });

  it("restarts the agent killed through its pid file and counts it", () => {
    expect(killed).toBeGreaterThan(0);
    expect(summary.restarts).toEqual({ coordinator: 0, "hospital-a": 0, "hospital-b": 1, "hospital-c": 0 });
    expect(stderr.some((l) => /hospital-b killed by SIGKILL; restart 1/.test(l))).toBe(true);
    expect(pidOf("hospital-b")).not.toBe(killed);
    expect(alive(pidOf("hospital-b"))).toBe(true);
  });

  it("lays out kits, pids and workspaces as the issue names them", () => {
    for (const p of ["admin", "coordinator", ...SITES])
      expect(existsSync(join(w, "kits", p, "kit.json")), p).toBe(true);
    expect(readdirSync(join(w, "pids")).sort()).toEqual(["coordinator.pid", ...SITES.map((s) => `${s}.pid`)]);
    expect(alive(pidOf("coordinator"))).toBe(true);
    expect(JSON.parse(readFileSync(join(w, "summary.json"), "utf8"))).toEqual(summary);
    // Each child stops with the supervisor, even one SIGKILLed: stdin is its pipe, and it is told so.
    for (const name of ["coordinator", ...SITES]) {
      const pid = pidOf(name);
      expect(readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")).toContain(
        "ENCLAVE_STOP_WITH_SUPERVISOR=1",
      );
      expect(readlinkSync(`/proc/${pid}/fd/0`)).toMatch(/^(pipe|socket):/); // Node: a socketpair
    }
  });

  it("orchestrate() runs a job on the running coordinator: rounds() streams each round, result() folds them", async () => {
    const handle = await orchestrate(
      {
        clients: SITES,
        min_clients: 2,
        rounds: 2,
        strategy: "FED_AVG",
        privacy: {
          mechanism: "DP_SGD",
          noise_multiplier: 4,
          max_grad_norm: 1,
          target_epsilon: 5,
          delta: 1e-5,
        },
        dataset_id: "breast-cancer-wisconsin.csv",
        model_arch: "SimpleMLP",
      },
      { kit: join(w, "kits", "admin"), endpoint: summary.endpoint },
    );
    expect(handle.jobId).toMatch(/^[0-9a-f-]{36}$/);
    const rounds: number[] = [];
    for await (const r of handle.rounds()) rounds.push(r.round);
    expect(rounds).toEqual([1, 2]);
    const result = await handle.result();
    expect(result).toMatchObject({ job_id: handle.jobId, status: "completed" });
    expect(result.rounds.map((r) => r.round)).toEqual([1, 2]);
    expect(result.final.accuracy).toEqual(expect.any(Number));
    // Each site's ledger carries the first job's spending: the second job's epsilon adds to it.
    for (const [i, c] of result.clients.entries())
      expect(c.epsilon).toBeGreaterThan(summary.clients[i].epsilon);
    // A refusal keeps the coordinator's code.
    await expect(
      orchestrate(
        { ...handle.job, job_id: handle.jobId },
        { kit: join(w, "kits", "admin"), endpoint: summary.endpoint },
      ),
    ).rejects.toMatchObject({ code: "JOB_EXISTS" });
    // The wrong kind of kit is refused before anything is sent.
    await expect(
      orchestrate(handle.job, { kit: join(w, "kits", "hospital-a"), endpoint: summary.endpoint }),
    ).rejects.toMatchObject({ code: "KIT_INVALID" });
  }, 120_000);

  it("SIGINT stops every child (no pid survives, pid files removed); the audit chain verifies", async () => {
    const pids = ["coordinator", ...SITES].map(pidOf);
    for (const pid of pids) expect(alive(pid)).toBe(true);
    const exited = new Promise<number | null>((r) => poc.once("exit", (code) => r(code)));
    poc.kill("SIGINT");
    expect(await exited).toBe(0);
    for (const pid of pids) expect(alive(pid), String(pid)).toBe(false);
    expect(readdirSync(join(w, "pids"))).toEqual([]);
    const v = await runEnclave(["audit", "verify", "--workspace", join(w, "coordinator")], {
      cwd: root,
      env: process.env,
    });
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/audit chain intact/);
  }, 60_000);
});

describe("enclave poc refuses before starting anything", () => {
  it("a port already in use: POC_PORT_IN_USE naming --port, nothing written", async () => {
    const root = mkdtempSync(join(tmpdir(), "enclave-poc-port-"));
    const held = createServer();
    await new Promise<void>((r) => held.listen(0, "127.0.0.1", r));
    const { port } = held.address() as AddressInfo;
    try {
      const r = await runEnclave(["poc", "--workspace", join(root, "w"), "--port", String(port), "--json"], {
        cwd: root,
        env: process.env,
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(
        `enclave: error [POC_PORT_IN_USE]: --port: 127.0.0.1:${port} is already in use`,
      );
      expect(r.stdout).toBe("");
      expect(existsSync(join(root, "w"))).toBe(false);
    } finally {
      held.close();
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("a workspace that already holds a POC: POC_WORKSPACE_IN_USE naming --workspace, nothing changed", async () => {
    const root = mkdtempSync(join(tmpdir(), "enclave-poc-ws-"));
    try {
      mkdirSync(join(root, "w", "ca"), { recursive: true });
      const r = await runEnclave(["poc", "--workspace", join(root, "w"), "--port", "0"], {
        cwd: root,
        env: process.env,
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/enclave: error \[POC_WORKSPACE_IN_USE\]: --workspace: /);
      expect(readdirSync(join(root, "w"))).toEqual(["ca"]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("a supervised child stops with its supervisor", () => {
  it("untilSignal() with ENCLAVE_STOP_WITH_SUPERVISOR=1 resolves SIGTERM when its stdin pipe closes", async () => {
    const signals = new URL("../../dist/cli/signals.js", import.meta.url).href;
    const run = (env: NodeJS.ProcessEnv) => {
      const child = spawn(
        process.execPath,
        [
          "-e", // A process kept alive (as a server is) until untilSignal() resolves.
          `setInterval(() => {}, 1000); import(${JSON.stringify(signals)}).then((m) => m.untilSignal()).then((s) => { console.log(s); process.exit(0); })`,
        ],
        { stdio: ["pipe", "pipe", "inherit"], env: { ...process.env, ...env } },
      );
      let out = "";
      child.stdout!.on("data", (b) => (out += b));
      const exited = new Promise<string>((r) => child.once("exit", () => r(out.trim())));
      // The supervisor's end of the pipe closes (as when it is SIGKILLed).
      setTimeout(() => child.stdin!.end(), 300);
      return { child, exited };
    };
    expect(await run({ ENCLAVE_STOP_WITH_SUPERVISOR: "1" }).exited).toBe("SIGTERM");
    // Without the variable stdin means nothing: only a signal stops it.
    const plain = run({ ENCLAVE_STOP_WITH_SUPERVISOR: "" });
    await new Promise((r) => setTimeout(r, 800));
    expect(plain.child.exitCode).toBeNull();
    plain.child.kill("SIGINT");
    expect(await plain.exited).toBe("SIGINT");
  });
});
