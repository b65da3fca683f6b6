import { resolve } from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { ValidationError } from "../../errors.js";
import { readJobFile } from "../../coordinator/job-fill.js";
import { runSimulation, type SimulationSummary, type SplitSpec } from "../../simulation/simulation.js";
import { NAMED_FEDERATION_DATASETS } from "../../simulation/site-data.js";
import { modelArchitectures } from "../../model/registry.js";
import { AggregationStrategy } from "../../schemas/federation.js";
import { DEFAULT_DELTA, EPSILON_HARD_CEILING, MAX_DELTA } from "../../schemas/privacy.js";
import { ExitCode } from "../exit-codes.js";
import { choiceFlag, intListFlag, numberFlag } from "../flags.js";
import { checkOutputDir } from "../output-path.js";
import { eventPrinter, pct } from "../round-lines.js";

function splitFlag(value: string): SplitSpec {
  if (value === "iid") return { kind: "iid" };
  const m = /^dirichlet:([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)$/i.exec(value);
  const alpha = m ? Number(m[1]) : NaN;
  if (!(alpha > 0 && Number.isFinite(alpha)))
    throw new InvalidArgumentError("must be iid or dirichlet:ALPHA with ALPHA > 0");
  return { kind: "dirichlet", alpha };
}

/** `byzantine=1,server_lr=0.05`: a job's strategy_options on the command line (checked with the job). */
function strategyOptionsFlag(value: string): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const pair of value.split(",")) {
    const m = /^([a-z][a-z0-9_]{0,39})=([A-Za-z0-9._+-]{1,40})$/.exec(pair.trim());
    if (!m)
      throw new InvalidArgumentError("must be KEY=VALUE[,KEY=VALUE...] (snake_case keys, e.g. byzantine=1)");
    const n = Number(m[2]);
    out[m[1]] = m[2] !== "" && Number.isFinite(n) ? n : m[2];
  }
  return out;
}

interface SimulateFlags {
  clients: number;
  rounds: number;
  strategy: AggregationStrategy;
  strategyOptions?: Record<string, number | string>;
  dataset?: string;
  model: string;
  modelSpec?: string;
  split: SplitSpec;
  targetEpsilon: number;
  noiseMultiplier?: number;
  mechanism: "dp-sgd" | "dp-fedavg";
  clientSamplingRate?: number;
  serverLr?: number;
  delta: number;
  maxGradNorm?: number;
  mu: number;
  workers: number;
  seed?: string;
  job?: string;
  out?: string;
  sitesDir?: string;
  localEpochs: number;
  batchSize: number;
  lr: number;
  momentum?: number;
  hidden: number[];
  json: boolean;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
}

function printSummary(s: SimulationSummary): void {
  const p = s.privacy;
  const rows = s.clients.map(
    (c) =>
      `  ${c.id.padEnd(14)} ${c.epsilon.toFixed(4).padStart(8)}  ${String(c.delta).padEnd(8)} ${String(c.examples).padStart(8)}  ${c.state}`,
  );
  process.stdout.write(
    [
      "",
      `status      ${s.status}${s.reason ? ` (${s.reason})` : ""}`,
      `accuracy    ${pct(s.final.accuracy)} federated with DP  |  ${pct(s.baseline.accuracy)} non-private centralised baseline  (gap ${((s.baseline.accuracy - s.final.accuracy) * 100).toFixed(2)} points)`,
      p
        ? `rounds      ${s.rounds.length}/${s.job.rounds}, ${s.job.strategy}, DP_FEDAVG client-level DP: z ${p.noise_multiplier.toFixed(4)}, C ${p.clip_norm}, q ${p.sampling_rate}, epsilon ${p.epsilon.toFixed(4)} of target ${p.target_epsilon}`
        : `rounds      ${s.rounds.length}/${s.job.rounds}, ${s.job.strategy}, sigma ${s.job.privacy.noise_multiplier.toFixed(4)}, target epsilon ${s.job.privacy.target_epsilon}`,
      "",
      p
        ? "  epsilon is client-level (a whole site's data), the job's epsilon for every client"
        : "  epsilon is example-level (one row of a site's data), per site",
      `  ${"client".padEnd(14)} ${"epsilon".padStart(8)}  ${"delta".padEnd(8)} ${"examples".padStart(8)}  state`,
      ...rows,
      "",
      `report      ${s.report_dir}/report.html`,
      `model       ${s.report_dir}/global_model.safetensors (sha256 ${s.model_sha256.slice(0, 16)}…)`,
      `time        ${s.seconds.toFixed(1)} s (kernels ${s.kernels})`,
      "",
    ].join("\n"),
  );
}

export function registerSimulateCommand(program: Command): void {
  program
    .command("simulate")
    .description("run a whole DP federation on this machine: a coordinator and N simulated hospitals")
    .option("--clients <n>", "number of simulated sites", numberFlag({ integer: true, min: 1, max: 64 }), 3)
    .option("--rounds <r>", "federated rounds", numberFlag({ integer: true, min: 1, max: 10000 }), 20)
    .option(
      "--strategy <s>",
      `aggregation strategy: ${AggregationStrategy.options.join(", ")}`,
      choiceFlag(AggregationStrategy.options),
      "FED_PROX",
    )
    .option(
      "--strategy-options <k=v,...>",
      "the strategy's hyperparameters, as a job's strategy_options (e.g. byzantine=1, beta=0.1, server_lr=0.05)",
      strategyOptionsFlag,
    )
    .option(
      "--dataset <file>",
      `dataset file with its schema file (CSV or IDX images), or ${NAMED_FEDERATION_DATASETS.join(", ")} (default: the bundled breast-cancer data)`,
    )
    .option("--model <arch>", `model architecture (${modelArchitectures().join(", ")})`, "SimpleMLP")
    .option("--model-spec <file>", "a ModelSpec file (JSON or YAML) to train instead of --model")
    .option("--split <split>", "iid or dirichlet:ALPHA", splitFlag, { kind: "iid" } as SplitSpec)
    .option(
      "--target-epsilon <e>",
      `per-site privacy budget (<= ${EPSILON_HARD_CEILING})`,
      numberFlag({ min: 0, exclusiveMin: true, max: EPSILON_HARD_CEILING }),
      3,
    )
    .option(
      "--mechanism <m>",
      "dp-sgd (example-level DP on each site) or dp-fedavg (client-level DP at the coordinator)",
      choiceFlag(["dp-sgd", "dp-fedavg"] as const),
      "dp-sgd",
    )
    .option(
      "--noise-multiplier <s>",
      "noise multiplier: DP-SGD sigma or DP-FedAvg server z (calibrated from the target when omitted)",
      numberFlag({ min: 0, exclusiveMin: true }),
    )
    .option(
      "--client-sampling-rate <q>",
      "dp-fedavg: probability each site joins a round (Poisson; default 1)",
      numberFlag({ min: 0, exclusiveMin: true, max: 1 }),
    )
    .option(
      "--server-lr <eta>",
      "dp-fedavg: server learning rate on the noised mean update (default 1)",
      numberFlag({ min: 0, exclusiveMin: true }),
    )
    .option("--delta <d>", "delta", numberFlag({ min: 0, exclusiveMin: true, max: MAX_DELTA }), DEFAULT_DELTA)
    .option(
      "--max-grad-norm <c>",
      "clip norm: per-example gradient (dp-sgd, default 1.0) or per-site model update (dp-fedavg, default 0.3)",
      numberFlag({ min: 0, exclusiveMin: true }),
    )
    .option("--mu <mu>", "FedProx proximal mu", numberFlag({ min: 0 }), 0.01)
    .option(
      "--workers <k>",
      "agents in K worker threads when K > 1",
      numberFlag({ integer: true, min: 1, max: 64 }),
      1,
    )
    .option("--seed <seed>", "deterministic run (seeded ChaCha20 instead of the OS CSPRNG)")
    .option("--job <file>", "a FederationJob (JSON or YAML) to run instead of the flags above")
    .option("--out <dir>", "report directory (default ./enclave-reports/simulation-<time>)")
    .option(
      "--sites-dir <dir>",
      "keep the simulated sites' data shards here (default: a temporary directory removed at the end)",
    )
    .option(
      "--local-epochs <n>",
      "local epochs per round",
      numberFlag({ integer: true, min: 1, max: 1000 }),
      1,
    )
    .option("--batch-size <b>", "expected (Poisson) batch size", numberFlag({ integer: true, min: 1 }), 16)
    .option("--lr <lr>", "client learning rate", numberFlag({ min: 0, exclusiveMin: true }), 0.05)
    .option(
      "--momentum <m>",
      "client SGD momentum (default 0.9; 0 for SCAFFOLD)",
      numberFlag({ min: 0, max: 0.999 }),
    )
    .option("--hidden <sizes>", "SimpleMLP hidden sizes", intListFlag, [32])
    .option("--json", "print one machine-readable summary at the end", false)
    .option(
      "--log-level <level>",
      "structured log level on stderr",
      choiceFlag(["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const),
      "warn",
    )
    .action(async (f: SimulateFlags) => {
      const job = f.job ? await readJobFile(resolve(f.job), "job file (--job)") : undefined;
      const reportDir = checkOutputDir(
        f.out ?? `enclave-reports/simulation-${new Date().toISOString().replace(/[:.]/g, "-")}`,
      );
      const strategy = job?.strategy ?? f.strategy;
      if (job && f.strategyOptions)
        throw new ValidationError("simulate flags", [
          {
            path: "--strategy-options",
            rule: "does not apply with --job (the job file has strategy_options)",
          },
        ]);
      const mechanism = job?.privacy?.mechanism ?? (f.mechanism === "dp-fedavg" ? "DP_FEDAVG" : "DP_SGD");
      if (mechanism !== "DP_FEDAVG" && (f.clientSamplingRate !== undefined || f.serverLr !== undefined))
        throw new ValidationError("simulate flags", [
          { path: "--client-sampling-rate/--server-lr", rule: "apply only with --mechanism dp-fedavg" },
        ]);
      if (!f.json)
        process.stderr.write(`coreason-enclave simulation (simulated attestation: no hardware protection)\n`);
      const s = await runSimulation({
        clients: f.clients,
        rounds: f.rounds,
        strategy,
        strategyOptions: f.strategyOptions,
        datasetFile:
          f.dataset && (NAMED_FEDERATION_DATASETS.includes(f.dataset) ? f.dataset : resolve(f.dataset)),
        modelArch: f.model,
        modelSpecFile: f.modelSpec && resolve(f.modelSpec),
        split: f.split,
        targetEpsilon: f.targetEpsilon,
        delta: f.delta,
        noiseMultiplier: f.noiseMultiplier,
        mechanism,
        clientSamplingRate: f.clientSamplingRate,
        serverLr: f.serverLr,
        maxGradNorm: f.maxGradNorm,
        proximalMu: f.mu,
        workers: f.workers,
        seed: f.seed,
        job,
        reportDir,
        sitesDir: f.sitesDir && resolve(f.sitesDir),
        plan: { epochs: f.localEpochs, batchSize: f.batchSize, learningRate: f.lr, momentum: f.momentum },
        hidden: f.hidden,
        accountant: "rdp",
        testFraction: 0.2,
        onEvent: f.json ? undefined : eventPrinter(),
        onSetup: f.json ? undefined : (message) => process.stderr.write(`  ${message}\n`),
        logLevel: f.logLevel,
      });
      if (f.json) {
        process.stdout.write(
          JSON.stringify({
            rounds: s.rounds,
            final: s.final,
            baseline: { accuracy: s.baseline.accuracy, loss: s.baseline.loss },
            clients: s.clients.map((c) => ({
              id: c.id,
              epsilon: c.epsilon,
              epsilon_level: c.epsilon_level,
              delta: c.delta,
              examples: c.examples,
            })),
            ...(s.privacy ? { privacy: s.privacy } : {}),
            report_dir: s.report_dir,
            model_sha256: s.model_sha256,
            status: s.status,
            job_id: s.job.job_id,
          }) + "\n",
        );
      } else {
        printSummary(s);
      }
      if (s.status !== "completed")
        process.exitCode =
          s.status === "privacy_budget_exhausted" ? ExitCode.BUDGET_EXHAUSTED : ExitCode.INSUFFICIENT_CLIENTS;
    });
}
