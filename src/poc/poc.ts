import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { basename, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { simulationTrustPolicy } from "../attestation/policy/simulation.js";
import { BUNDLED_DATASET } from "../data/bundled.js";
import { defaultPlan } from "../federation/task.js";
import { ProjectConfig } from "../identity/project.js";
import { provisionProject } from "../identity/provision.js";
import { specForDataset } from "../model/registry.js";
import { randomStream } from "../random.js";
import { parseContract } from "../schemas/contract.js";
import { DEFAULT_DELTA } from "../schemas/privacy.js";
import {
  foldOutcome,
  orchestrate,
  type JobEvent,
  type JobOutcome,
  type JobRequest,
} from "../sdk/orchestrate.js";
import { simulatedSiteIds } from "../simulation/simulation.js";
import { centralisedBaseline, loadFederationData, shardTrainingData } from "../simulation/site-data.js";
import { PocError } from "./errors.js";
import { Supervisor } from "./supervisor.js";

/** `enclave poc` with no flags: 3 sites, 20 rounds (as `enclave simulate`), in ./enclave-poc, port 7339. */
export const POC_DEFAULTS = { clients: 3, rounds: 20, workspace: "enclave-poc", port: 7339 } as const;

export interface PocOptions {
  clients: number;
  rounds: number;
  /** Where the project goes: kits/, pids/, logs/, coordinator/, sites/, summary.json. */
  workspace: string;
  /** The coordinator's port on 127.0.0.1 (0: any free port). */
  port: number;
  /** After the job, keep every child running (for a dashboard or more jobs) until `signal`. */
  keepRunning?: boolean;
  /** SIGINT / SIGTERM: stop the children and end with POC_INTERRUPTED. */
  signal: AbortSignal;
  /** Setup steps and the children's exits and restarts, one line each. */
  onProgress?: (line: string) => void;
  /** The summary, as soon as the job ends (before `keepRunning` waits). */
  onSummary?: (s: PocSummary) => void;
  /** The job's events as they happen. */
  onEvent?: (e: JobEvent) => void;
  /** How long the coordinator and the agents have to come up (default 120 s). */
  startTimeoutMs?: number;
  /** Restarts per child before it is given up (default 5). */
  maxRestarts?: number;
}

/** The same shape as `enclave simulate --json`, plus where the POC ran and each child's restarts. */
export interface PocSummary {
  rounds: JobOutcome["rounds"];
  final: JobOutcome["final"];
  baseline: { accuracy: number; loss: number };
  clients: {
    id: string;
    epsilon: number;
    epsilon_level: "example";
    delta: number;
    examples: number;
    state: string;
  }[];
  model_sha256: string;
  status: JobOutcome["status"];
  reason?: string;
  job_id: string;
  workspace: string;
  endpoint: string;
  restarts: Record<string, number>;
}

/** The CLI's entry: what each child runs (`enclave coordinator`, `enclave agent`). */
const CLI_ENTRY = fileURLToPath(new URL("../cli/main.js", import.meta.url));
const COORDINATOR = "coordinator";
const ADMIN = "admin";

/** The port, checked free on 127.0.0.1 (0: one the OS picks now, used for the whole run). */
export function claimPort(port: number): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", (err: NodeJS.ErrnoException) =>
      fail(
        err.code === "EADDRINUSE" || err.code === "EACCES"
          ? new PocError(
              "POC_PORT_IN_USE",
              `--port: 127.0.0.1:${port} is ${err.code === "EACCES" ? "not permitted" : "already in use"}; pass another --port (0 for any free port)`,
            )
          : err,
      ),
    );
    server.listen(port, "127.0.0.1", () => {
      const { port: bound } = server.address() as { port: number };
      server.close(() => done(bound));
    });
  });
}

/** The POC's files: the project's kits, the coordinator's held-out data, each site's shard and config. */
async function prepare(o: PocOptions, w: string, port: number) {
  if (existsSync(join(w, "ca")) || existsSync(join(w, "kits")))
    throw new PocError(
      "POC_WORKSPACE_IN_USE",
      "--workspace: it already holds a POC project (ca/, kits/ and the sites' privacy ledgers); remove it or choose another --workspace",
    );
  const sites = simulatedSiteIds(o.clients);
  const project = parseContract(
    ProjectConfig,
    { name: "poc", coordinator: { host: "127.0.0.1", port, name: COORDINATOR }, sites, admins: [ADMIN] },
    "project",
  );
  mkdirSync(w, { recursive: true });
  writeFileSync(join(w, "project.yaml"), JSON.stringify(project, null, 2) + "\n");
  await provisionProject(project, w);
  o.onProgress?.(`project poc: CA in ${join(w, "ca")}, kits in ${join(w, "kits")}`);

  const data = await loadFederationData(BUNDLED_DATASET, 0.2, randomStream(undefined, "split"));
  const shards = shardTrainingData(
    data.train,
    sites.length,
    { kind: "iid" },
    randomStream(undefined, "partition"),
  );
  const datasetId = basename(BUNDLED_DATASET);
  const coordinator = join(w, COORDINATOR);
  data.writeTest(join(coordinator, "eval"), datasetId);
  // One machine holds every shard here, so the coordinator may pool them for the dashboard's baseline.
  data.writeShard(join(coordinator, "pooled"), datasetId, data.train);
  writeFileSync(
    join(coordinator, "trust-policy.json"),
    JSON.stringify(simulationTrustPolicy(), null, 2) + "\n",
  );
  const endpoint = `https://127.0.0.1:${port}`;
  sites.forEach((site, i) => {
    const home = join(w, "sites", site);
    data.writeShard(join(home, "data"), datasetId, shards[i]);
    const conf = {
      node_id: site,
      data_root: "./data",
      sidecar_port: 0,
      coordinator_url: endpoint,
      log_level: "info",
    };
    writeFileSync(join(home, "agent.json"), JSON.stringify(conf, null, 2) + "\n");
    o.onProgress?.(`site ${site}: ${shards[i].rows} examples in ${join(home, "data")}`);
  });
  o.onProgress?.(`coordinator: ${data.test.rows} held-out examples in ${join(coordinator, "eval")}`);
  const job: JobRequest = {
    clients: sites,
    min_clients: Math.max(1, Math.ceil(sites.length / 2)),
    rounds: o.rounds,
    strategy: "FED_PROX",
    proximal_mu: 0.01,
    privacy: { mechanism: "DP_SGD", max_grad_norm: 1, target_epsilon: 3, delta: DEFAULT_DELTA },
    dataset_id: datasetId,
    model_arch: "SimpleMLP",
  };
  return { sites, data, datasetId, endpoint, job, minRows: Math.min(...shards.map((s) => s.rows)) };
}

/** Resolves when `ready` has been called for every name; rejects after `ms` or when `signal` aborts. */
function readiness(names: readonly string[], ms: number, what: string, signal: AbortSignal) {
  const waiting = new Set(names);
  let done!: () => void;
  let fail!: (err: Error) => void;
  const all = new Promise<void>((resolve, reject) => ((done = resolve), (fail = reject)));
  const timer = setTimeout(
    () =>
      fail(
        new PocError(
          "POC_START_TIMEOUT",
          `${what} did not come up within ${Math.round(ms / 1000)} s (see logs/)`,
        ),
      ),
    ms,
  );
  signal.addEventListener("abort", () => fail(stopped(signal)), { once: true });
  return {
    all: all.finally(() => clearTimeout(timer)),
    ready(name: string) {
      if (waiting.delete(name) && waiting.size === 0) done();
    },
  };
}

/** Why the POC is stopping: a child given up (the abort's reason), or a signal. */
const stopped = (signal: AbortSignal, detail = "") =>
  signal.reason instanceof PocError
    ? signal.reason
    : new PocError("POC_INTERRUPTED", `stopped by a signal${detail}`);

type Prepared = Awaited<ReturnType<typeof prepare>>;

/** The coordinator, then (once it listens) one agent per site; resolves when every agent is admitted. */
async function startChildren(
  supervisor: Supervisor,
  p: Prepared,
  w: string,
  port: number,
  o: PocOptions,
  signal: AbortSignal,
) {
  const timeout = o.startTimeoutMs ?? 120_000;
  const listening = readiness([COORDINATOR], timeout, "the coordinator", signal);
  supervisor.start({
    name: COORDINATOR,
    args: [
      "coordinator",
      ...["--kit", join(w, "kits", COORDINATOR), "--workspace", join(w, COORDINATOR)],
      ...["--host", "127.0.0.1", "--port", String(port)],
      ...["--trust-policy", join(w, COORDINATOR, "trust-policy.json")],
      ...["--eval-data", join(w, COORDINATOR, "eval", p.datasetId)],
      ...["--baseline-data", join(w, COORDINATOR, "pooled", p.datasetId)],
      ...["--heartbeat", "2", "--log-level", "info"],
    ],
    onLine: (line) => line.startsWith('{"listening"') && listening.ready(COORDINATOR),
  });
  await listening.all;
  o.onProgress?.(`coordinator listening on ${p.endpoint} (pid ${supervisor.pid(COORDINATOR)})`);
  const admitted = readiness(p.sites, timeout, "the agents", signal);
  for (const site of p.sites)
    supervisor.start({
      name: site,
      args: [
        "agent",
        ...["--kit", join(w, "kits", site), "--conf", join(w, "sites", site, "agent.json")],
        ...["--workspace", join(w, "sites", site, "workspace"), "--simulation"],
      ],
      onLine: (line) => line.includes("admitted by the coordinator") && admitted.ready(site),
    });
  await admitted.all;
  o.onProgress?.(`agents admitted: ${p.sites.join(", ")}`);
}

/** The demo job through the SDK, its events to `onEvent`, until it ends (or the POC stops: the job is aborted). */
async function runDemoJob(p: Prepared, w: string, o: PocOptions, signal: AbortSignal) {
  const handle = await orchestrate(p.job, {
    kit: join(w, "kits", ADMIN),
    endpoint: p.endpoint,
    calibration: { rows: p.minRows },
  });
  const { job } = handle;
  o.onProgress?.(
    `job ${handle.jobId}: ${p.sites.length} sites, ${job.rounds} rounds, ${job.strategy}, sigma ${job.privacy.noise_multiplier.toFixed(4)}, target epsilon ${job.privacy.target_epsilon}`,
  );
  const events: JobEvent[] = [];
  for await (const e of handle.events(signal)) {
    events.push(e);
    o.onEvent?.(e);
  }
  const outcome = foldOutcome(handle.jobId, events);
  if (outcome) return { job, outcome };
  // The job ends "aborted" in the coordinator's store and audit chain, not left "running".
  await Promise.race([handle.abort().catch(() => undefined), new Promise((r) => setTimeout(r, 5000))]);
  throw stopped(signal, " before the job ended (the job was aborted)");
}

/**
 * `enclave poc`: a federation of separate OS processes on loopback, like NVFlare's POC mode. It
 * provisions a project (kits in W/kits/<participant>), gives each site a shard of the bundled
 * data and the coordinator the held-out rows, starts `enclave coordinator` and one `enclave
 * agent --simulation` per site under a Supervisor (pids in W/pids, logs in W/logs), submits the
 * demo job (the `enclave simulate` defaults) with the admin kit, follows it to the end, and stops
 * everything. The summary has the shape of `enclave simulate --json` plus each child's restarts.
 */
export async function runPoc(o: PocOptions): Promise<PocSummary> {
  const w = resolve(o.workspace);
  const port = await claimPort(o.port);
  const p = await prepare(o, w, port);
  const env = { ...process.env };
  delete env.DATABASE_URL; // a POC keeps its own embedded databases under W
  const failed = new AbortController();
  const supervisor = new Supervisor({
    entry: CLI_ENTRY,
    pidDir: join(w, "pids"),
    logDir: join(w, "logs"),
    env,
    maxRestarts: o.maxRestarts,
    onExit: (name, how, n, delay) =>
      o.onProgress?.(
        delay === null
          ? `${name} ${how}; given up after ${n} restart(s)`
          : `${name} ${how}; restart ${n} in ${(delay / 1000).toFixed(1)} s`,
      ),
  });
  supervisor.onGiveUp((name) => {
    if (name !== COORDINATOR) return; // the job goes on with the other sites
    const log = join(w, "logs", "coordinator.log");
    failed.abort(new PocError("POC_CHILD_FAILED", `the coordinator kept exiting (see ${log})`));
  });
  const signal = AbortSignal.any([o.signal, failed.signal]);
  try {
    await startChildren(supervisor, p, w, port, o, signal);
    const { job, outcome } = await runDemoJob(p, w, o, signal);
    const baseline = await centralisedBaseline(
      p.data,
      specForDataset(job.model_arch, p.data.dataset, { hidden: [32] }),
      {
        rounds: outcome.rounds.length,
        plan: defaultPlan(job.strategy),
        init: randomStream(undefined, "baseline-init"),
        sampling: randomStream(undefined, "baseline"),
      },
    );
    const summary: PocSummary = {
      rounds: outcome.rounds,
      final: outcome.final,
      baseline,
      clients: outcome.clients.map((c) => ({
        id: c.id,
        epsilon: c.epsilon,
        epsilon_level: "example",
        delta: job.privacy.delta,
        examples: c.examples,
        state: c.state,
      })),
      model_sha256: outcome.model_sha256,
      status: outcome.status,
      ...(outcome.reason !== undefined ? { reason: outcome.reason } : {}),
      job_id: job.job_id,
      workspace: w,
      endpoint: p.endpoint,
      restarts: supervisor.restarts(),
    };
    writeFileSync(join(w, "summary.json"), JSON.stringify(summary, null, 2) + "\n");
    o.onSummary?.(summary);
    if (o.keepRunning) {
      o.onProgress?.(
        `still running (--keep-running): admin kit ${join(w, "kits", ADMIN)}; Ctrl-C stops every child`,
      );
      await new Promise<void>((r) =>
        signal.aborted ? r() : signal.addEventListener("abort", () => r(), { once: true }),
      );
    }
    return summary;
  } finally {
    await supervisor.stop();
  }
}
