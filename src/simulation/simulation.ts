import { randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { simulationTrustPolicy } from "../attestation/policy/simulation.js";
import { SimulatedProvider } from "../attestation/providers/software.js";
import { BUNDLED_DATASET } from "../data/bundled.js";
import { EnclaveError } from "../errors.js";
import { createLogger, type LogLevel } from "../logging/logger.js";
import type { DestinationStream } from "pino";
import { Network } from "../model/network.js";
import { specForDataset } from "../model/registry.js";
import { serializeSafetensors, weightsHash } from "../model/safetensors.js";
import { getNoiseMultiplier, type AccountantName } from "../privacy/accountant/index.js";
import { BudgetLedger } from "../privacy/budget-ledger.js";
import { DEFAULT_DELTA, type PrivacyMechanism } from "../schemas/privacy.js";
import { openDatabase, type Database } from "../storage/database.js";
import { schemaScoped } from "../storage/schema-scope.js";
import { SeededRandom, randomStream, type RandomSource } from "../random.js";
import { AggregationStrategy, FederationJob, type FederationJobInput } from "../schemas/federation.js";
import { parseContract } from "../schemas/contract.js";
import type { ModelSpec } from "../schemas/model.js";
import { kernels } from "../tensor/backend.js";
import { assertTrainingFits } from "../training/memory-estimate.js";
import { createDirectory } from "../storage/directory.js";
import { evaluate, poissonSchedule } from "../training/trainer.js";
import { renderHtmlReport } from "../report/html-report.js";
import {
  assertClientLevelJob,
  calibrateClientNoise,
  ClientLevelDp,
  clientSamplingRate,
  type ClientLevelPrivacyReport,
} from "../coordinator/client-level-dp.js";
import { AttestationGate } from "../coordinator/attestation-gate.js";
import { describeFilled, fillJob, type FillableField } from "../coordinator/job-fill.js";
import { runFederation, type JobResult, type RoundRecord } from "../coordinator/coordinator.js";
import type { CoordinatorEvent, CoordinatorEventListener } from "../coordinator/events.js";
import { startAgentWorker } from "../agent/agent-worker.js";
import { LocalAgent } from "../agent/local-agent.js";
import type { AgentHandle } from "../federation/agent-handle.js";
import type { TensorMap } from "../tensor/tensor.js";
import { strategyForJob, type StrategySpec } from "../strategies/factory.js";
import type { FedProx } from "../strategies/fedprox.js";
import { snakeCase } from "../schemas/strategy-options.js";
import type { Strategy, StrategyName } from "../strategies/types.js";
import { defaultPlan, type LocalTrainingPlan } from "../federation/task.js";
import { modelSpecFromFile } from "../training/local-training.js";
import { centralisedBaseline, loadFederationData, shardTrainingData, type SplitSpec } from "./site-data.js";

const MIB = 2 ** 20;
/**
 * What a simulation holds besides the sites' training, measured on this project's runs (peak RSS,
 * `enclave simulate`, see docs/federation.md): the process with its embedded database and the
 * bundled data once; per site in process its agent and ledger schema; per site in a worker thread
 * the thread's own runtime and in-memory database.
 */
const SIMULATION_BASE_BYTES = 800 * MIB;
const IN_PROCESS_SITE_BYTES = 16 * MIB;
const WORKER_SITE_BYTES = 192 * MIB;

export type { SplitSpec } from "./site-data.js";

/**
 * What `runSimulation` runs. Every field has a default, the same as `enclave simulate` with no flags:
 * 3 sites, 20 rounds, FED_PROX (mu 0.01), an IID split of the bundled breast-cancer data, target
 * epsilon 3 at delta 1e-5, clip 1.0 (0.3 for DP_FEDAVG), 1 local epoch at batch 16, lr 0.05,
 * momentum 0.9 (0 for SCAFFOLD), SimpleMLP [32], RDP, 20% held out, in process.
 */
export interface SimulationOptions {
  clients?: number;
  rounds?: number;
  /**
   * Any aggregation strategy: a job strategy name (`"KRUM"`, with `strategyOptions`), a strategy
   * spec (`{ name: "FED_ADAM", serverLr: 0.05 }`, see `createStrategy`; it becomes the job's
   * `strategy` and `strategy_options`) or a `Strategy` instance (its own options are not in the
   * job). The sites train plain DP-SGD except for FED_PROX (proximal term) and SCAFFOLD (control variates).
   */
  strategy?: StrategyName | StrategySpec | Strategy;
  /** With a strategy name: the job's `strategy_options` (snake_case, e.g. `{ byzantine: 1 }`). */
  strategyOptions?: Record<string, unknown>;
  datasetFile?: string;
  split?: SplitSpec;
  targetEpsilon?: number;
  delta?: number;
  /** DP_SGD (example-level, on the agents; the default) or DP_FEDAVG (client-level, at the coordinator). */
  mechanism?: PrivacyMechanism;
  /** DP_FEDAVG: q, each client's per-round sampling probability (default 1). */
  clientSamplingRate?: number;
  /** DP_FEDAVG: server learning rate η (default 1). */
  serverLr?: number;
  /**
   * Calibrated when omitted: so every client's whole job fits the target (DP_SGD), or so the
   * job's rounds at q fit it (DP_FEDAVG).
   */
  noiseMultiplier?: number;
  maxGradNorm?: number;
  proximalMu?: number;
  minClients?: number;
  /** Agents in worker threads when > 1. */
  workers?: number;
  seed?: number | string;
  /** A FederationJob (validated) overriding clients, rounds, strategy and privacy. */
  job?: FederationJobInput;
  /** What a user keeps: model, checkpoints, rounds, summary, report (default ./enclave-reports/simulation-<time>). */
  reportDir?: string;
  /**
   * The simulated sites' own directories (their data shards): kept when given; by default a
   * temporary directory removed when the run ends.
   */
  sitesDir?: string;
  plan?: Partial<LocalTrainingPlan>;
  /** A registered architecture (default SimpleMLP, with `hidden`); image architectures read the dataset's image shape. */
  modelArch?: string;
  /** A validated ModelSpec to train instead of `modelArch` (it must read the dataset's features and classes). */
  modelSpec?: ModelSpec;
  /** A ModelSpec file (JSON or YAML), read and checked against the dataset like `train --model-spec`. */
  modelSpecFile?: string;
  hidden?: number[];
  accountant?: AccountantName;
  testFraction?: number;
  /** The coordinator's events (rounds, clients admitted, reported, excluded), in order. */
  onEvent?: CoordinatorEventListener;
  /** One line per setup step (the job, each agent, the coordinator's budget): progress for a console. */
  onSetup?: (message: string) => void;
  /** Structured log level of the coordinator and agents (JSON lines on stderr). */
  logLevel?: LogLevel;
  /** Where log lines go (default stderr): tests capture them. */
  logDestination?: DestinationStream;
}

/** The options with every default filled in. */
type Resolved = Required<
  Omit<
    SimulationOptions,
    | "mechanism"
    | "strategyOptions"
    | "clientSamplingRate"
    | "serverLr"
    | "noiseMultiplier"
    | "minClients"
    | "seed"
    | "job"
    | "sitesDir"
    | "onEvent"
    | "onSetup"
    | "logLevel"
    | "logDestination"
    | "plan"
    | "modelArch"
    | "modelSpec"
    | "modelSpecFile"
  >
> &
  SimulationOptions & { plan: LocalTrainingPlan };

function withDefaults(o: SimulationOptions): Resolved {
  const mechanism = o.job?.privacy?.mechanism ?? o.mechanism ?? "DP_SGD";
  const strategy = o.job?.strategy ?? o.strategy ?? "FED_PROX";
  const plan = defaultPlan(typeof strategy === "string" ? strategy : strategy.name);
  return {
    ...o,
    clients: o.clients ?? 3,
    rounds: o.rounds ?? 20,
    strategy,
    datasetFile: o.datasetFile ?? BUNDLED_DATASET,
    split: o.split ?? { kind: "iid" },
    // Calibration reads these: a job file's own privacy settings win over the options.
    targetEpsilon: o.job?.privacy?.target_epsilon ?? o.targetEpsilon ?? 3,
    delta: o.job?.privacy?.delta ?? o.delta ?? DEFAULT_DELTA,
    clientSamplingRate: o.job?.privacy?.client_sampling_rate ?? o.clientSamplingRate,
    // A site's whole update is larger than one example's gradient, but the noise grows with C:
    // 0.3 clips most breast-cancer updates at the defaults and kept accuracy best in our runs.
    maxGradNorm: o.maxGradNorm ?? (mechanism === "DP_FEDAVG" ? 0.3 : 1.0),
    proximalMu: o.proximalMu ?? 0.01,
    workers: o.workers ?? 1,
    reportDir: resolve(
      o.reportDir ?? `enclave-reports/simulation-${new Date().toISOString().replace(/[:.]/g, "-")}`,
    ),
    plan: {
      epochs: o.plan?.epochs ?? plan.epochs,
      batchSize: o.plan?.batchSize ?? plan.batchSize,
      learningRate: o.plan?.learningRate ?? plan.learningRate,
      momentum: o.plan?.momentum ?? plan.momentum,
    },
    hidden: o.hidden ?? [32],
    accountant: o.accountant ?? "rdp",
    testFraction: o.testFraction ?? 0.2,
  };
}

export interface SimulationSummary {
  job: FederationJob;
  /** The coordinator's aggregation rule (the job's `strategy` is what the sites run for it). */
  strategy: StrategyName;
  status: JobResult["status"];
  reason?: string;
  rounds: RoundRecord[];
  final: { accuracy: number; loss: number };
  baseline: { accuracy: number; loss: number };
  clients: {
    id: string;
    epsilon: number;
    /** "example": DP-SGD on the agent's rows; "client": DP-FedAvg over whole sites (the job's epsilon). */
    epsilon_level: "example" | "client";
    delta: number;
    examples: number;
    state: string;
  }[];
  /** DP_FEDAVG: the coordinator's client-level accounting. */
  privacy?: ClientLevelPrivacyReport;
  model_sha256: string;
  report_dir: string;
  kernels: string;
  seconds: number;
  /** Each site's local training per round (epochs, batch size, learning rate, momentum). */
  plan: LocalTrainingPlan;
  /** The coordinator's held-out test set every round is scored on (and the baseline). */
  test_examples: number;
  accountant: AccountantName;
}

/**
 * The job: from the options, or the given job file with a fresh `job_id` and the calibrated noise
 * multiplier filled in where it omits them (`filled` names what was filled, for the user).
 */
function buildJob(
  o: Resolved,
  aggregation: JobStrategy,
  sigma: number,
  rng: RandomSource,
): { job: FederationJob; filled: FillableField[] } {
  const clients = simulatedSiteIds(o.clients);
  const hex = Array.from({ length: 16 }, () => Math.floor(rng.uniform() * 256));
  hex[6] = (hex[6] & 0x0f) | 0x40;
  hex[8] = (hex[8] & 0x3f) | 0x80;
  const b = hex.map((x) => x.toString(16).padStart(2, "0")).join("");
  const uuid =
    o.seed === undefined
      ? randomUUID()
      : `${b.slice(0, 8)}-${b.slice(8, 12)}-${b.slice(12, 16)}-${b.slice(16, 20)}-${b.slice(20)}`;
  if (o.job) return fillJob(o.job, { newId: () => uuid, calibrate: () => sigma });
  const job = parseContract(
    FederationJob,
    {
      job_id: uuid,
      clients,
      // Krum scores need n >= 2f + 3 updates: at least 3 must report.
      min_clients:
        o.minClients ??
        Math.min(
          o.clients,
          Math.max(aggregation.strategy.endsWith("KRUM") ? 3 : 1, Math.ceil(o.clients / 2)),
        ),
      rounds: o.rounds,
      strategy: aggregation.strategy,
      ...(aggregation.options ? { strategy_options: aggregation.options } : {}),
      proximal_mu: aggregation.mu ?? o.proximalMu,
      privacy: {
        mechanism: o.mechanism ?? "DP_SGD",
        noise_multiplier: sigma,
        max_grad_norm: o.maxGradNorm,
        target_epsilon: o.targetEpsilon,
        delta: o.delta,
        // Passed whenever given: the contract refuses it for DP_SGD instead of ignoring it.
        ...(o.clientSamplingRate !== undefined ? { client_sampling_rate: o.clientSamplingRate } : {}),
      },
      dataset_id: basename(o.datasetFile),
      model_arch: o.modelSpec?.arch ?? o.modelArch ?? "SimpleMLP",
    },
    "FederationJob",
  );
  return { job, filled: [] };
}

/** The simulated sites' ids: hospital-a, hospital-b, ... (`enclave simulate` and `enclave poc`). */
export function simulatedSiteIds(n: number): string[] {
  return Array.from(
    { length: n },
    (_, i) => `hospital-${String.fromCharCode(97 + (i % 26))}${i >= 26 ? i : ""}`,
  );
}

/** Worst-case (over clients) noise multiplier so every client's whole job fits the target. */
function calibrateSigma(o: Resolved, rounds: number, shardRows: number[]): number {
  return Math.max(
    ...shardRows.map((n) => {
      const { sampleRate, stepsPerEpoch } = poissonSchedule(n, o.plan.batchSize);
      return getNoiseMultiplier({
        accountant: o.accountant,
        targetEpsilon: o.targetEpsilon,
        delta: o.delta,
        sampleRate,
        steps: rounds * o.plan.epochs * stepsPerEpoch,
      });
    }),
  );
}

/**
 * The whole federation on one machine: a coordinator and N agents (in this thread or in worker
 * threads), each agent with its own data root, ledger and simulated attestation.
 */
export async function runSimulation(options: SimulationOptions = {}): Promise<SimulationSummary> {
  const t0 = Date.now();
  const o = withDefaults(options);
  const k = kernels();
  const rng = (label: string): RandomSource => randomStream(o.seed, label);
  const logger = createLogger({
    level: o.logLevel ?? "warn",
    name: "simulation",
    destination: o.logDestination,
  });
  const setup = (message: string) => {
    logger.debug({ event: "setup", message }, "simulation setup");
    o.onSetup?.(message);
  };
  const checkpoint = (round: number, global: TensorMap) => {
    // Every round: a crash loses at most the round in flight.
    mkdirSync(join(o.reportDir, "checkpoints"), { recursive: true });
    const name = `round-${String(round).padStart(4, "0")}.safetensors`;
    writeFileSync(
      join(o.reportDir, "checkpoints", name),
      serializeSafetensors(global, { format: "pt", round: String(round) }),
    );
  };
  const onEvent = async (e: CoordinatorEvent) => {
    logger.debug(logFields(e), "coordinator event");
    if (e.type === "round_completed") checkpoint(e.round, e.global);
    await o.onEvent?.(e);
  };

  // Data: the coordinator's held-out test set, and one shard per client written to its own data root.
  const data = await loadFederationData(o.datasetFile, o.testFraction, rng("split"));
  const { dataset, test } = data;
  const trainRaw = data.train;
  const specGiven =
    o.modelSpec ?? (o.modelSpecFile ? await modelSpecFromFile(o.modelSpecFile, dataset) : undefined);
  const numClients = o.job ? o.job.clients.length : o.clients;
  const shardData = shardTrainingData(trainRaw, numClients, o.split, rng("partition"));

  const rounds = o.job?.rounds ?? o.rounds;
  const mechanism = o.job?.privacy?.mechanism ?? o.mechanism ?? "DP_SGD";
  const sigma =
    o.job?.privacy?.noise_multiplier ??
    o.noiseMultiplier ??
    (mechanism === "DP_FEDAVG"
      ? calibrateClientNoise({
          rounds,
          samplingRate: o.clientSamplingRate ?? 1,
          delta: o.delta,
          targetEpsilon: o.targetEpsilon,
          accountant: o.accountant,
        })
      : calibrateSigma(
          o,
          rounds,
          shardData.map((s) => s.rows),
        ));
  const aggregation = jobStrategy(o.strategy, o.strategyOptions);
  const { job, filled } = buildJob(
    { ...o, modelSpec: specGiven, clients: numClients },
    aggregation,
    sigma,
    rng("job"),
  );
  const clientLevel = job.privacy.mechanism === "DP_FEDAVG";
  if (clientLevel) assertClientLevelJob(job); // before any agent starts
  if (clientLevel && aggregation.server)
    throw new EnclaveError(
      "SIMULATION_OPTIONS",
      "strategy: DP_FEDAVG aggregates with its own DP-FedAvg strategy; pass a job strategy name (FED_AVG) or none",
    );
  setup(
    clientLevel
      ? `job ${job.job_id}: ${job.clients.length} clients, ${job.rounds} rounds, ${job.strategy}, DP_FEDAVG (client-level): z ${job.privacy.noise_multiplier.toFixed(4)}, C ${job.privacy.max_grad_norm}, q ${clientSamplingRate(job)}, target epsilon ${job.privacy.target_epsilon}`
      : `job ${job.job_id}: ${job.clients.length} clients, ${job.rounds} rounds, ${job.strategy}, sigma ${job.privacy.noise_multiplier.toFixed(4)}, target epsilon ${job.privacy.target_epsilon}`,
  );

  for (const line of describeFilled(job, filled)) setup(line);
  const model: ModelSpec = specGiven ?? specForDataset(job.model_arch, dataset, { hidden: o.hidden });
  // Every site trains in this process (or its worker threads): refused up front when it will not fit.
  assertTrainingFits(model, o.plan.batchSize, Math.max(...shardData.map((s) => s.rows)), numClients, {
    perSite: o.workers > 1 ? WORKER_SITE_BYTES : IN_PROCESS_SITE_BYTES,
    base: SIMULATION_BASE_BYTES,
  });
  createDirectory(o.reportDir, "report directory");
  writeFileSync(join(o.reportDir, "job.json"), JSON.stringify(job, null, 2) + "\n");
  const policy = simulationTrustPolicy();

  // Agents. Their data shards live in the sites directory, not the report. Ledgers are embedded
  // PostgreSQL in memory (nothing of a simulated site outlives the run): in process, each site's
  // ledger is its own schema of one database (one initdb instead of one per site); in worker
  // threads, one database per site. Same ledger, guard and accounting as a real site's.
  const agents: AgentHandle[] = [];
  let coordinatorDb: Database | undefined;
  let sitesDb: Database | undefined;
  const sitesDir = o.sitesDir ?? mkdtempSync(join(tmpdir(), "enclave-sites-"));
  try {
    if (o.workers <= 1) sitesDb = await openDatabase({ workspace: sitesDir, url: "", memory: true });
    for (let i = 0; i < job.clients.length; i++) {
      const id = job.clients[i];
      const home = join(sitesDir, id);
      data.writeShard(join(home, "data"), job.dataset_id, shardData[i]);
      const agentOptions = {
        id,
        workspace: home,
        dataRoot: join(home, "data"),
        policy,
        accountant: o.accountant,
        seed: o.seed,
        logLevel: o.logLevel ?? "warn",
        // The simulation's operator owns both sides, so its sites accept client-level DP jobs.
        acceptClientLevelDp: clientLevel,
      };
      agents.push(
        o.workers > 1
          ? await startAgentWorker({ ...agentOptions, memoryDatabase: true })
          : await LocalAgent.start({
              ...agentOptions,
              provider: new SimulatedProvider(),
              database: await schemaScoped(sitesDb!, `site_${i}`),
              logger: logger.child({ agent: id }),
            }),
      );
      setup(`agent ${id}: ${shardData[i].rows} examples, ${o.workers > 1 ? "worker thread" : "in process"}`);
    }

    const evalNet = new Network(model, k, new SeededRandom(0));
    const initNet = new Network(model, k, rng("global-init"));
    // DP_FEDAVG: the job's client-level budget lives in the coordinator's own ledger.
    let clientLevelDp: ClientLevelDp | undefined;
    if (clientLevel) {
      coordinatorDb = sitesDb
        ? await schemaScoped(sitesDb, "coordinator")
        : await openDatabase({ workspace: "", url: "", memory: true });
      clientLevelDp = await ClientLevelDp.open({
        job,
        ledger: await BudgetLedger.open(coordinatorDb),
        accountant: o.accountant,
        noise: rng("dp-fedavg-noise"),
        sampling: rng("client-sampling"),
        allowInsecureRandom: o.seed !== undefined,
        serverLr: o.serverLr,
        kernels: k,
      });
      setup(
        `coordinator: client-level budget per site (${clientLevelDp.ledgerKeys.length} keys dp-fedavg:client:<site>), spent epsilon ${clientLevelDp.spentEpsilon().toFixed(4)}; noise std on the mean update η·z·C/(qN) = ${((clientLevelDp.inner.serverLr * job.privacy.noise_multiplier * job.privacy.max_grad_norm) / clientLevelDp.inner.expectedClients).toFixed(4)} per coordinate (it shrinks only with more sites)`,
      );
    }
    const strategy = clientLevelDp ?? aggregation.server ?? strategyForJob(job);
    const result = await runFederation({
      job,
      model,
      plan: o.plan,
      agents,
      initial: initNet.weights(),
      strategy,
      gate: new AttestationGate(policy),
      ordered: o.seed !== undefined,
      evaluate: (weights) => {
        evalNet.loadWeights(weights);
        return evaluate(evalNet, test);
      },
      onEvent,
    });

    // The non-private, centralised baseline: same data, model, optimiser and number of passes.
    const baseline = await centralisedBaseline(data, model, {
      rounds: result.rounds.length,
      plan: o.plan,
      init: rng("global-init"),
      sampling: rng("baseline"),
    });
    evalNet.loadWeights(result.global);
    const final = evaluate(evalNet, test);
    const summary: SimulationSummary = {
      job,
      strategy: strategy.name,
      status: result.status,
      reason: result.reason,
      rounds: result.rounds,
      final,
      baseline,
      clients: result.clients.map((c) => ({
        id: c.id,
        epsilon: c.epsilon,
        epsilon_level: clientLevel ? "client" : "example",
        delta: job.privacy.delta,
        examples: c.examples,
        state: c.state,
      })),
      ...(result.privacy ? { privacy: result.privacy } : {}),
      model_sha256: weightsHash(result.global),
      report_dir: o.reportDir,
      kernels: k.name,
      seconds: (Date.now() - t0) / 1000,
      plan: o.plan,
      test_examples: test.rows,
      accountant: o.accountant,
    };
    writeReport(o.reportDir, summary, result);
    return summary;
  } finally {
    await Promise.allSettled([...agents.map((a) => a.close()), coordinatorDb?.close()]);
    await sitesDb?.close();
    if (!o.sitesDir) rmSync(sitesDir, { recursive: true, force: true });
  }
}

/** A coordinator event as a log line: ids, codes and numbers (the model itself stays out). */
function logFields(e: CoordinatorEvent): Record<string, unknown> {
  if (e.type !== "round_completed") return { event: e.type, ...e };
  const r = e.record;
  return {
    event: e.type,
    round: r.round,
    accuracy: r.accuracy,
    loss: r.loss,
    epsilon: r.epsilon,
    model_sha256: e.model_sha256,
  };
}

/** A strategy option as the job's `strategy`, `strategy_options` and `proximal_mu`, or a server instance. */
interface JobStrategy {
  strategy: AggregationStrategy;
  options?: Record<string, unknown>;
  mu?: number;
  /** A `Strategy` instance given by the caller: the coordinator runs it instead of the job's. */
  server?: Strategy;
}

function jobStrategy(
  strategy: StrategyName | StrategySpec | Strategy,
  strategyOptions: Record<string, unknown> | undefined,
): JobStrategy {
  const isJobName = (name: string): name is AggregationStrategy =>
    AggregationStrategy.options.includes(name as AggregationStrategy);
  if (strategyOptions !== undefined && typeof strategy !== "string")
    throw new EnclaveError("SIMULATION_OPTIONS", "strategyOptions: apply only with a strategy name");
  const name = typeof strategy === "string" ? strategy : strategy.name;
  if (!isJobName(name))
    throw new EnclaveError(
      "SIMULATION_OPTIONS",
      name === "DP_FED_AVG"
        ? "strategy: DP_FED_AVG runs with mechanism DP_FEDAVG, which builds it"
        : `strategy: must be one of ${AggregationStrategy.options.join(", ")}`,
    );
  if (typeof strategy === "string") return { strategy: name, options: strategyOptions };
  if ("begin" in strategy)
    return {
      strategy: name,
      server: strategy,
      mu: name === "FED_PROX" ? (strategy as FedProx).mu : undefined,
    };
  // A spec is the job's strategy_options under the library's names; the job supplies mu and N.
  const { name: _, mu, totalClients: __, ...rest } = strategy as Record<string, unknown>;
  const options = Object.fromEntries(Object.entries(rest).map(([k, v]) => [snakeCase(k), v]));
  return { strategy: name, options, mu: mu as number | undefined };
}

/** What the run was trained with, as the report states it. */
function hyperparameters(s: SimulationSummary): [string, string][] {
  const j = s.job;
  const p = j.privacy;
  const options = j.strategy_options ? Object.entries(j.strategy_options) : [];
  return [
    [
      "strategy",
      s.strategy + (options.length ? ` (${options.map(([k, v]) => `${k} = ${String(v)}`).join(", ")})` : ""),
    ],
    ...(s.strategy === "FED_PROX" ? ([["proximal μ", String(j.proximal_mu)]] as [string, string][]) : []),
    ["rounds", `${s.rounds.length} of ${j.rounds} (min_clients ${j.min_clients})`],
    ["local epochs per round", String(s.plan.epochs)],
    [p.mechanism === "DP_FEDAVG" ? "batch size" : "expected batch size (Poisson)", String(s.plan.batchSize)],
    ["learning rate", String(s.plan.learningRate)],
    ["momentum", String(s.plan.momentum)],
    ["privacy mechanism", p.mechanism],
    ["noise multiplier", p.noise_multiplier.toFixed(4)],
    ["clipping norm C", String(p.max_grad_norm)],
    ["target ε, δ", `${p.target_epsilon}, ${p.delta}`],
    [
      "accountant",
      `${s.accountant} (${p.mechanism === "DP_FEDAVG" ? "client level, at the coordinator" : "example level, at each site"})`,
    ],
    ["model", j.model_arch],
  ];
}

function writeReport(dir: string, s: SimulationSummary, result: JobResult): void {
  // No metadata: the file's SHA-256 is then exactly summary.model_sha256 (weightsHash).
  writeFileSync(join(dir, "global_model.safetensors"), serializeSafetensors(result.global));
  writeFileSync(join(dir, "rounds.json"), JSON.stringify(s.rounds, null, 2) + "\n");
  const ids = s.job.clients;
  const csv = [
    ["round", "clients", "loss", "accuracy", "examples", "seconds", ...ids.map((i) => `epsilon_${i}`)].join(
      ",",
    ),
    ...s.rounds.map((r) =>
      [
        r.round,
        r.clients.length,
        r.loss,
        r.accuracy,
        r.examples,
        r.seconds,
        ...ids.map((i) => r.epsilon[i] ?? ""),
      ].join(","),
    ),
  ];
  writeFileSync(join(dir, "rounds.csv"), csv.join("\n") + "\n");
  writeFileSync(join(dir, "summary.json"), JSON.stringify(s, null, 2) + "\n");
  writeFileSync(
    join(dir, "report.html"),
    renderHtmlReport({
      title: "coreason-enclave simulation",
      subtitle:
        s.job.privacy.mechanism === "DP_FEDAVG"
          ? `${s.job.clients.length} simulated sites, ${s.job.strategy}, DP-FedAvg client-level DP (z = ${s.job.privacy.noise_multiplier.toFixed(3)}, C = ${s.job.privacy.max_grad_norm}, q = ${s.privacy?.sampling_rate ?? 1}), simulated attestation`
          : `${s.job.clients.length} simulated sites, ${s.job.strategy}, DP-SGD (σ = ${s.job.privacy.noise_multiplier.toFixed(3)}, C = ${s.job.privacy.max_grad_norm}), simulated attestation`,
      rounds: s.rounds.map((r) => ({ ...r, clients: r.clients.length })),
      baselineAccuracy: s.baseline.accuracy,
      testExamples: s.test_examples,
      hyperparameters: hyperparameters(s),
      targetEpsilon: s.job.privacy.target_epsilon,
      summary: [
        ["job", s.job.job_id],
        ["status", s.status + (s.reason ? ` (${s.reason})` : "")],
        ["dataset", s.job.dataset_id],
        ["final test accuracy", `${(s.final.accuracy * 100).toFixed(2)}%`],
        ["non-private centralised baseline", `${(s.baseline.accuracy * 100).toFixed(2)}%`],
        [
          s.privacy ? "client-level epsilon spent" : "max epsilon spent",
          `${Math.max(0, ...s.clients.map((c) => c.epsilon)).toFixed(4)} (target ${s.job.privacy.target_epsilon}, δ = ${s.job.privacy.delta})`,
        ],
        ["global model sha256", s.model_sha256],
        ["kernels", s.kernels],
        ["wall time", `${s.seconds.toFixed(1)} s`],
      ],
      clients: s.clients.map((c) => ({
        id: c.id,
        epsilon: c.epsilon,
        delta: c.delta,
        examples: c.examples,
        status: c.state,
      })),
    }),
  );
}
