// Federation across processes on loopback: `enclave coordinator` and three `enclave agent --kit`
// processes that dial out over mTLS, jobs submitted with an admin kit and watched to the end.
// An agent SIGKILLed mid-round leaves the round to the others and, restarted, rejoins a later
// round of the same job; an agent frozen mid-round (SIGSTOP) is cut off when its heartbeats stop,
// and the round goes on without it.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { emptyLedgerCopier } from "../support/ledger-template.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const MAIN = join(REPO, "dist", "cli", "main.js");
const DATA = join(REPO, "data", "breast-cancer-wisconsin");
const SITES = ["site-a", "site-b", "site-c"];

function enclave(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { timeout: 120_000 }, (error, out, err) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out, err }),
    );
  });
}

type Event = {
  type: string;
  round?: number;
  client_id?: string;
  state?: string;
  reason?: string;
  status?: string;
  record?: { clients: string[]; seconds: number };
};

const job = (id: string, rounds: number) => ({
  job_id: id,
  clients: SITES,
  min_clients: 2,
  rounds,
  strategy: "FED_AVG",
  privacy: { mechanism: "DP_SGD", noise_multiplier: 2, max_grad_norm: 1, target_epsilon: 5, delta: 1e-5 },
  dataset_id: "breast-cancer-wisconsin.csv",
  model_arch: "SimpleMLP",
});

describe("federation over the network (real processes, mTLS on loopback)", () => {
  let root: string;
  let coordinator: ChildProcess;
  let endpoint: string;
  const agents = new Map<string, ChildProcess>();
  const kit = (name: string) => join(root, "kits", name);
  const admin = () => ["--kit", kit("admin"), "--endpoint", endpoint];

  const startAgent = (site: string) => {
    const child = spawn(
      process.execPath,
      [
        MAIN,
        "agent",
        "--kit",
        kit(site),
        "--conf",
        join(root, site, "agent.yaml"),
        "--workspace",
        join(root, site, "ws"),
        "--simulation",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    agents.set(site, child);
    // Resolves when the coordinator has admitted it (its log says so).
    return new Promise<void>((resolve) =>
      createInterface({ input: child.stderr! }).on("line", (l) => {
        if (l.includes("admitted by the coordinator")) resolve();
      }),
    );
  };

  /** `enclave watch --json` as a process: each event to `on` as it arrives; resolves with all of them. */
  const watch = (jobId: string, on: (e: Event) => void = () => undefined): Promise<Event[]> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [MAIN, "watch", ...admin(), "--json", jobId], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      const events: Event[] = [];
      createInterface({ input: child.stdout! }).on("line", (l) => {
        const e = JSON.parse(l) as Event;
        events.push(e);
        on(e);
      });
      child.once("exit", (code) =>
        code === 0 ? resolve(events) : reject(new Error(`watch exited ${code}`)),
      );
    });

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "enclave-net-"));
    writeFileSync(
      join(root, "project.yaml"),
      `name: net\ncoordinator: {host: localhost, port: 7339}\nsites: [${SITES.join(", ")}]\nadmins: [admin]\n`,
    );
    const p = await enclave("provision", "--project", join(root, "project.yaml"), "--out", root);
    expect(p.code, p.err).toBe(0);
    writeFileSync(
      join(root, "policy.json"),
      JSON.stringify({ allow_simulated: true, max_evidence_age_seconds: 600 }),
    );
    coordinator = spawn(
      process.execPath,
      [
        MAIN,
        "coordinator",
        "--kit",
        kit("coordinator"),
        "--workspace",
        join(root, "coordinator"),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--trust-policy",
        join(root, "policy.json"),
        "--eval-data",
        `${DATA}.csv`,
        "--round-timeout",
        "30",
        "--heartbeat",
        "2",
        "--log-level",
        "warn",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    coordinator.stderr!.resume();
    const first = await new Promise<string>((resolve, reject) => {
      createInterface({ input: coordinator.stdout! }).once("line", resolve);
      coordinator.once("exit", (code) => reject(new Error(`coordinator exited ${code}`)));
    });
    endpoint = `https://localhost:${JSON.parse(first).listening.port}`;
    const seed = await emptyLedgerCopier(root);
    for (const site of SITES) {
      const dir = join(root, site);
      mkdirSync(join(dir, "data"), { recursive: true });
      const text = readFileSync(`${DATA}.csv`);
      writeFileSync(join(dir, "data", "breast-cancer-wisconsin.csv"), text);
      // The schema pins the file's SHA-256 (the Data Sentry checks it): pin the site's own file.
      const schema = JSON.parse(readFileSync(`${DATA}.schema.json`, "utf8"));
      schema.sha256 = createHash("sha256").update(text).digest("hex");
      writeFileSync(join(dir, "data", "breast-cancer-wisconsin.schema.json"), JSON.stringify(schema));
      writeFileSync(
        join(dir, "agent.yaml"),
        `node_id: ${site}\ndata_root: ./data\nsidecar_port: 0\ncoordinator_url: ${endpoint}\nlog_level: info\n`,
      );
      seed(join(dir, "ws"));
    }
    await Promise.all(SITES.map(startAgent));
  });

  afterAll(async () => {
    for (const child of [...agents.values(), coordinator]) {
      if (child?.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGCONT");
      child.kill("SIGTERM");
      await exited;
    }
    rmSync(root, { recursive: true, force: true });
  });

  it("runs a submitted job on the agents that dialled in: status completed, every round once", async () => {
    const id = "6f1e28ba-2fa1-4d3b-a3f5-ef19b5a7633b";
    writeFileSync(join(root, "job-1.json"), JSON.stringify(job(id, 3)));
    const s = await enclave("submit", ...admin(), "--json", join(root, "job-1.json"));
    expect(s.code, s.err).toBe(0);
    expect(JSON.parse(s.out)).toEqual({ job_id: id });
    const events = await watch(id);
    const attested = events.filter((e) => e.type === "client_attested" && e.round === 1);
    expect(attested.map((e) => [e.client_id, e.status]).sort()).toEqual(SITES.map((c) => [c, "TRUSTED"]));
    const rounds = events.filter((e) => e.type === "round_completed");
    expect(rounds.map((e) => e.round)).toEqual([1, 2, 3]);
    const why = JSON.stringify(events.filter((e) => e.type === "client_excluded"));
    for (const r of rounds) expect([...r.record!.clients].sort(), why).toEqual(SITES);
    const st = await enclave("status", ...admin(), "--json", id);
    expect(JSON.parse(st.out)).toMatchObject({
      job_id: id,
      status: "completed",
      rounds_completed: 3,
      rounds: 3,
    });
    const jobs = await enclave("jobs", ...admin(), "--json");
    expect(JSON.parse(jobs.out)).toContainEqual({ job_id: id, status: "completed", rounds_completed: 3 });
  });

  it("an agent SIGKILLed mid-round: the round ends with the others, the restarted agent rejoins; a frozen one is cut off", async () => {
    const id = "7a1e28ba-2fa1-4d3b-a3f5-ef19b5a7633b";
    writeFileSync(join(root, "job-2.json"), JSON.stringify(job(id, 60)));
    expect((await enclave("submit", ...admin(), join(root, "job-2.json"))).code).toBe(0);
    // What the test did, and when (the round count when it acted): the watch stream can lag
    // the coordinator by more than a round, so each round is found from the records afterwards.
    let killedAfter = 0;
    let frozenAfter = 0;
    let completed = 0;
    const c = () => agents.get("site-c")!;
    let killedIn = 0;
    const events = await watch(id, (e) => {
      if (e.type === "round_completed") completed = e.round!;
      if (e.type === "client_excluded" && e.client_id === "site-c" && killedAfter && !killedIn)
        killedIn = e.round!;
      if (
        e.type === "client_reported" &&
        e.client_id === "site-c" &&
        killedIn &&
        !frozenAfter &&
        e.round! > killedIn
      ) {
        // Back in the job: frozen now, it answers nothing, and is cut off when its heartbeats stop.
        frozenAfter = completed;
        c().kill("SIGSTOP");
        setTimeout(() => c().kill("SIGCONT"), 14_000);
      }
      if (e.type === "round_completed" && e.round === 2 && !killedAfter) {
        // Frozen, so the coordinator is surely waiting on it inside a round when it dies.
        killedAfter = completed;
        c().kill("SIGSTOP");
        setTimeout(() => {
          c().once("exit", () => void startAgent("site-c"));
          c().kill("SIGKILL");
        }, 1000);
      }
    });
    const finished = events.find((e) => e.type === "job_finished");
    expect(finished).toMatchObject({ status: "completed" });
    const rounds = events.filter((e) => e.type === "round_completed");
    expect(rounds.map((e) => e.round)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    const record = (n: number) => rounds.find((e) => e.round === n)!.record!;
    const dropped = (after: number) =>
      events.find((e) => e.type === "client_excluded" && e.client_id === "site-c" && e.round! > after)!;
    // Killed mid-round: that round ended with the other two (the session's end failed its call).
    const killed = dropped(killedAfter);
    expect(killed).toMatchObject({ state: "dropped", reason: expect.stringMatching(/^AGENT_DISCONNECTED/) });
    expect(record(killed.round!).clients).toEqual(["site-a", "site-b"]);
    // Restarted, it rejoined a later round of the same job.
    const back = events.find(
      (e) => e.type === "client_reported" && e.client_id === "site-c" && e.round! > killed.round!,
    );
    expect(back).toBeDefined();
    // Frozen mid-round: cut off well before the round's 30 s deadline, and the round went on.
    expect(frozenAfter).toBeGreaterThan(killed.round!);
    const frozen = dropped(frozenAfter);
    expect(frozen).toMatchObject({ state: "dropped" });
    expect(record(frozen.round!).clients).toEqual(["site-a", "site-b"]);
    expect(record(frozen.round!).seconds).toBeLessThan(30);
    // No client counted twice in any round.
    for (const r of rounds) expect(new Set(r.record!.clients).size).toBe(r.record!.clients.length);
  });
});
