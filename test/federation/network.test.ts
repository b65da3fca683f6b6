// Federation across processes on loopback: `enclave coordinator` and three `enclave agent --kit`
// processes that dial out over mTLS, jobs submitted with an admin kit and watched to the end.
// An agent SIGKILLed mid-round leaves the round to the others and, restarted, rejoins a later
// round of the same job; an agent frozen mid-round (SIGSTOP) is cut off when its heartbeats stop,
// and the round goes on without it. A coordinator SIGKILLed mid-round and restarted on its
// workspace resumes the job from its checkpoint. A test client with a real site kit shows
// relayed and replayed evidence refused over a real session, and a revoked site certificate
// refused at its next handshake.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bindReportData } from "../../src/attestation/binding.js";
import { SimulatedProvider } from "../../src/attestation/providers/software.js";
import { MessageQueue } from "../../src/federation/transports/message-queue.js";
import { evidenceToWire, type RequestInit } from "../../src/federation/transports/session-wire.js";
import type { SessionResponse } from "../../src/gen/agent/v1/session_pb.js";
import { certificatePublicKey } from "../../src/identity/certificates.js";
import { loadKit } from "../../src/identity/kit.js";
import { adminClient } from "../../src/sdk/admin-client.js";
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
  let port: number;
  const agents = new Map<string, ChildProcess>();
  /** Each agent's log lines (pino JSON), across its restarts. */
  const logs = new Map<string, string[]>(SITES.map((s) => [s, []]));
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
        logs.get(site)!.push(l);
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

  /** The coordinator as a child process on `listen`, its jobs in `<root>/coordinator`. */
  async function startCoordinator(listen: string): Promise<void> {
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
        listen,
        "--trust-policy",
        join(root, "policy.json"),
        "--eval-data",
        `${DATA}.csv`,
        "--round-timeout",
        "30",
        "--heartbeat",
        "2",
        "--revocations",
        join(root, "ca", "revoked.json"),
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
    port = JSON.parse(first).listening.port;
    endpoint = `https://localhost:${port}`;
  }

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
    await startCoordinator("0");
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
      // The same records less the last row: a dataset of its own (its own ledger key, a fresh budget).
      const fewer = text.toString("utf8").trimEnd().split("\n").slice(0, -1).join("\n") + "\n";
      writeFileSync(join(dir, "data", "bc-resume.csv"), fewer);
      schema.sha256 = createHash("sha256").update(fewer).digest("hex");
      writeFileSync(join(dir, "data", "bc-resume.schema.json"), JSON.stringify(schema));
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

  it("a coordinator SIGKILLed mid-round resumes on its workspace: every round once, each site's ledger holds exactly the steps of the tasks it finished", async () => {
    const id = "8b1e28ba-2fa1-4d3b-a3f5-ef19b5a7633b";
    const ROUNDS = 20;
    // FED_ADAM: the resumed job needs the optimizer's moments back, not only the model.
    const spec = { ...job(id, ROUNDS), strategy: "FED_ADAM", dataset_id: "bc-resume.csv" };
    writeFileSync(join(root, "job-3.json"), JSON.stringify(spec));
    expect((await enclave("submit", ...admin(), join(root, "job-3.json"))).code).toBe(0);
    const c = () => agents.get("site-c")!;
    let killedAt = 0;
    const died = new Promise((r) => coordinator.once("exit", r));
    await watch(id, (e) => {
      if (e.type === "round_completed" && e.round! >= 3 && !killedAt) {
        killedAt = e.round!;
        // Frozen, so the coordinator is surely inside a round, waiting on it, when it dies.
        c().kill("SIGSTOP");
        setTimeout(() => coordinator.kill("SIGKILL"), 500);
      }
    }).catch(() => undefined); // the watch ends with its coordinator
    await died;
    c().kill("SIGCONT");
    await startCoordinator(String(port));
    const events = await watch(id);
    expect(events.find((e) => e.type === "job_finished")).toMatchObject({ status: "completed" });
    const rounds = events.filter((e) => e.type === "round_completed") as (Event & { model_sha256: string })[];
    expect(rounds.map((e) => e.round)).toEqual(Array.from({ length: ROUNDS }, (_, i) => i + 1));
    // Resumed once, from the checkpoint: the second job_started carries the model of the last
    // round released before the kill, and the rounds go on at the next number.
    const starts = events
      .map((e, i) => ({ e: e as Event & { model_sha256?: string }, i }))
      .filter(({ e }) => e.type === "job_started");
    expect(starts).toHaveLength(2);
    const before = rounds.filter((r) => events.indexOf(r) < starts[1].i);
    expect(before.length).toBeGreaterThanOrEqual(killedAt);
    expect(before.length).toBeLessThan(ROUNDS);
    expect(starts[1].e.model_sha256).toBe(before.at(-1)!.model_sha256);
    const st = await enclave("status", ...admin(), "--json", id);
    expect(JSON.parse(st.out)).toMatchObject({ status: "completed", rounds_completed: ROUNDS });
    // Each site's ledger (the authority, read once the agent has stopped) holds exactly the steps
    // of the tasks it finished, the interrupted round's included, once; nothing left reserved.
    for (const site of SITES) {
      const child = agents.get(site)!;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
    for (const site of SITES) {
      const trained = logs
        .get(site)!
        .map((l) => JSON.parse(l) as { msg?: string; job_id?: string; steps?: number })
        .filter((l) => l.msg === "task trained and sanitised" && l.job_id === id);
      const ledger = await enclave("ledger", "show", "--workspace", join(root, site, "ws"), "--json");
      expect(ledger.code, ledger.err).toBe(0);
      const jobs = (
        JSON.parse(ledger.out) as {
          datasets: { jobs: { job_id: string; steps: number; reserved: boolean }[] }[];
        }
      ).datasets.flatMap((d) => d.jobs.filter((j) => j.job_id === id));
      expect(jobs, site).toHaveLength(1);
      expect(jobs[0], site).toMatchObject({
        steps: trained.reduce((n, l) => n + l.steps!, 0),
        reserved: false,
      });
      // Never fewer tasks finished than rounds it was counted in (an interrupted task is extra).
      expect(trained.length).toBeGreaterThanOrEqual(
        rounds.filter((r) => r.record!.clients.includes(site)).length,
      );
    }
  });

  /**
   * A test client speaking agent.v1 Session with a real site kit: Hello, then the first challenge
   * answered by `answer`; resolves with the coordinator's verdict. The real agents are stopped
   * by now (the test above), so this client is the site's only session.
   */
  async function challenged(
    site: string,
    answer: (nonce: Uint8Array, requestId: bigint) => Promise<RequestInit>,
  ): Promise<{ nonce: Uint8Array; verdict: { status: string; refused: string } }> {
    const siteKit = await loadKit(kit(site));
    const out = new MessageQueue<RequestInit>(16);
    void out.push({ kind: { case: "hello", value: { nodeId: site, agentVersion: "test" } } });
    const call = new AbortController();
    let nonce: Uint8Array = new Uint8Array();
    try {
      for await (const res of adminClient(siteKit, endpoint).session(out, {
        signal: call.signal,
      }) as AsyncIterable<SessionResponse>) {
        if (res.kind.case === "challenge") {
          nonce = res.kind.value.nonce;
          await out.push(await answer(nonce, res.kind.value.requestId));
        }
        if (res.kind.case === "verdict") return { nonce, verdict: res.kind.value };
      }
      throw new Error("the session ended without a verdict");
    } finally {
      out.end();
      call.abort();
    }
  }

  it("refuses relayed evidence (bound to another TLS key) and replayed evidence (a used nonce) over a real session", async () => {
    const provider = new SimulatedProvider();
    const keyOf = async (site: string) => certificatePublicKey((await loadKit(kit(site))).credential.certPem);
    const own = await keyOf("site-a");
    const other = await keyOf("site-b");
    const reply = async (requestId: bigint, nonce: Uint8Array, bound: Uint8Array, claimed: Uint8Array) => ({
      kind: {
        case: "evidence" as const,
        value: {
          requestId,
          publicKey: claimed,
          ...evidenceToWire(await provider.collect(bindReportData(nonce, bound, undefined))),
        },
      },
    });
    // The control: evidence bound to this session's nonce and this certificate's key is trusted.
    let kept: RequestInit | undefined;
    const good = await challenged("site-a", async (nonce, id) => (kept = await reply(id, nonce, own, own)));
    expect(good.verdict).toMatchObject({ status: "TRUSTED", refused: "" });
    // Relayed: evidence made for site-b's key, presented on site-a's TLS session.
    const relayed = await challenged("site-a", (nonce, id) => reply(id, nonce, other, other));
    expect(relayed.verdict.status).toBe("REFUSED");
    expect(relayed.verdict.refused).toMatch(/^EVIDENCE_KEY_MISMATCH/);
    // Relayed, claiming this session's key: the report data still binds the other key.
    const disguised = await challenged("site-a", (nonce, id) => reply(id, nonce, other, own));
    expect(disguised.verdict.status).not.toBe("TRUSTED");
    // Replayed: the control's evidence again (its nonce used), answering a fresh challenge.
    const replayed = await challenged("site-a", async (nonce, id) => {
      expect(Buffer.from(nonce).equals(Buffer.from(good.nonce))).toBe(false);
      const k = kept!.kind as { case: "evidence"; value: Record<string, unknown> };
      return { kind: { case: "evidence", value: { ...k.value, requestId: id } } } as RequestInit;
    });
    expect(replayed.verdict.status).not.toBe("TRUSTED");
    // And the site is trusted again the moment it answers properly: nothing was pinned wrongly.
    const again = await challenged("site-a", (nonce, id) => reply(id, nonce, own, own));
    expect(again.verdict.status).toBe("TRUSTED");
  });

  it("refuses a revoked site certificate at its next handshake", async () => {
    const provider = new SimulatedProvider();
    const key = certificatePublicKey((await loadKit(kit("site-b"))).credential.certPem);
    const answer = async (nonce: Uint8Array, requestId: bigint): Promise<RequestInit> => ({
      kind: {
        case: "evidence",
        value: {
          requestId,
          publicKey: key,
          ...evidenceToWire(await provider.collect(bindReportData(nonce, key, undefined))),
        },
      },
    });
    expect((await challenged("site-b", answer)).verdict.status).toBe("TRUSTED");
    const rv = await enclave("revoke", "--ca", join(root, "ca"), "--cert", join(kit("site-b"), "cert.pem"));
    expect(rv.code, rv.err).toBe(0);
    await expect(challenged("site-b", answer)).rejects.toThrow();
  });
});
