import { join, resolve } from "node:path";
import type { Command } from "commander";
import { serializeSafetensors } from "../../model/safetensors.js";
import { encodeModelFile } from "../../model/model-file.js";
import { modelArchitectures, trainingDefaults } from "../../model/registry.js";
import { DEFAULT_DELTA, EPSILON_HARD_CEILING, MAX_DELTA } from "../../schemas/privacy.js";
import { MAX_NOISE_MULTIPLIER } from "../../privacy/accountant/index.js";
import {
  NAMED_DATASETS,
  PrivacyBudgetInsufficientError,
  runLocalTraining,
  type IsolationReport,
} from "../../training/local-training.js";
import { choiceFlag, intListFlag, numberFlag } from "../flags.js";
import { ExitCode } from "../exit-codes.js";
import { checkOutputDir, writeOutputFiles } from "../output-path.js";
import { ProgressBar } from "../progress.js";
import { defaultWorkspace } from "../workspace.js";
import { defaultCacheDir } from "../../runtime/cache-dir.js";
import { isolationOptions, type IsolationFlags } from "../isolation-flags.js";
import { TaskRuntime } from "../../runtime/task-runtime.js";

interface TrainFlags extends IsolationFlags {
  dataset: string;
  model: string;
  modelSpec?: string;
  epochs?: number;
  targetEpsilon: number;
  noiseMultiplier?: number;
  delta?: number;
  maxGradNorm?: number;
  batchSize?: number;
  lr?: number;
  momentum?: number;
  hidden?: number[];
  activation: "relu" | "tanh" | "gelu";
  accountant: "rdp" | "prv";
  workspace?: string;
  out?: string;
  seed?: string;
  testFraction: number;
  baseline: boolean;
  json: boolean;
}

function formatIsolation(i: IsolationReport): string {
  if (i.mode === "none") return "none (this process)";
  if (i.mode === "process") return `process (a child process, channel ${i.channel})`;
  return `microvm (${i.vmm}, ${i.accel === "kvm" ? "KVM" : "software emulation"}, channel ${i.channel}, no network device; measurement ${i.measurement})`;
}

/** The runtime of `--isolation microvm|process`, its events and warnings on stderr; none for `none`. */
async function isolatedTrainer(f: TrainFlags): Promise<TaskRuntime | undefined> {
  if (f.isolation === "none") return undefined;
  return TaskRuntime.prepare({
    mode: f.isolation,
    cacheDir: resolve(f.runtimeCache ?? defaultCacheDir()),
    provider: f.provider,
    taskTimeoutMs: f.taskTimeout === undefined ? undefined : f.taskTimeout * 1000,
    onWarning: (w) => process.stderr.write(`enclave: WARNING: ${w}\n`),
    onEvent: ({ event, ...fields }) =>
      process.stderr.write(
        `enclave: runtime ${event} ${Object.entries(fields)
          .map(([k, v]) => `${k}=${v}`)
          .join(" ")}\n`,
      ),
  });
}

/** Exit code when the Privacy Guard stopped training before the planned steps (a partial model is written). */
export const EXIT_BUDGET_EXHAUSTED = ExitCode.BUDGET_EXHAUSTED;

export function registerTrainCommand(program: Command): void {
  isolationOptions(
    program.command("train"),
    "where the task runs: microvm (no network device), process (a child process) or none (this process)",
  )
    .description(
      "train a model locally with DP-SGD under the Privacy Guard; writes safetensors and a JSON report",
    )
    .requiredOption(
      "--dataset <file>",
      `dataset file with a schema file next to it (<name>.schema.json), or ${NAMED_DATASETS.join(", ")}`,
    )
    .option("--model <arch>", `model architecture (${modelArchitectures().join(", ")})`, "SimpleMLP")
    .option("--model-spec <file>", "a ModelSpec file (JSON or YAML) to train instead of --model")
    .option(
      "--epochs <n>",
      "epochs (required unless the architecture has defaults)",
      numberFlag({ integer: true, min: 1, max: 100000 }),
    )
    .requiredOption(
      "--target-epsilon <e>",
      `privacy budget (<= ${EPSILON_HARD_CEILING})`,
      numberFlag({ min: 0, exclusiveMin: true, max: EPSILON_HARD_CEILING }),
    )
    .option(
      "--noise-multiplier <s>",
      "noise multiplier (calibrated from the target when omitted)",
      numberFlag({ min: 0, exclusiveMin: true, max: MAX_NOISE_MULTIPLIER }),
    )
    .option(
      "--delta <d>",
      `delta (default min(${DEFAULT_DELTA}, 0.1/n) for the dataset's n training rows)`,
      numberFlag({ min: 0, exclusiveMin: true, max: MAX_DELTA }),
    )
    .option(
      "--max-grad-norm <c>",
      "per-example clipping norm (default 1, or the architecture's)",
      numberFlag({ min: 0, exclusiveMin: true }),
    )
    .option(
      "--batch-size <b>",
      "expected (Poisson) batch size (default 32, or the architecture's)",
      numberFlag({ integer: true, min: 1, max: 1 << 20 }),
    )
    .option(
      "--lr <lr>",
      "learning rate (SGD; default 0.05, or the architecture's)",
      numberFlag({ min: 0, exclusiveMin: true }),
    )
    .option(
      "--momentum <m>",
      "SGD momentum (default 0.9, or the architecture's)",
      numberFlag({ min: 0, max: 0.999 }),
    )
    .option("--hidden <sizes>", "SimpleMLP hidden sizes, e.g. 64,32", intListFlag)
    .option("--activation <a>", "SimpleMLP activation", choiceFlag(["relu", "tanh", "gelu"] as const), "relu")
    .option(
      "--accountant <a>",
      "reporting accountant (the guard always halts on RDP)",
      choiceFlag(["rdp", "prv"] as const),
      "rdp",
    )
    .option(
      "--workspace <dir>",
      "workspace holding the persistent privacy ledger (default ~/.enclave/workspace)",
    )
    .option("--out <dir>", "output directory (default ./enclave-train-<time>)")
    .option(
      "--seed <seed>",
      "reproducible run (seeded ChaCha20 instead of the OS CSPRNG; not for production)",
    )
    .option(
      "--test-fraction <f>",
      "held-out fraction",
      numberFlag({ min: 0, exclusiveMin: true, max: 0.9 }),
      0.2,
    )
    .option("--baseline", "also train the non-private baseline with the same settings", false)
    .option("--json", "print the report as JSON", false)
    .action(async (f: TrainFlags, cmd: Command) => {
      const d = f.modelSpec ? undefined : trainingDefaults(f.model);
      const epochs = f.epochs ?? d?.epochs;
      if (epochs === undefined)
        // Names a known architecture only: an unknown --model value is never echoed.
        cmd.error(
          `error: option '--epochs <n>' is required for ${f.modelSpec ? "--model-spec" : modelArchitectures().includes(f.model) ? f.model : "this --model"}`,
        );
      // Everything that can fail is checked before the first step spends budget.
      const out = checkOutputDir(
        f.out ?? `enclave-train-${new Date().toISOString().replace(/[:.]/g, "-")}`,
        "--out",
      );
      const bar = new ProgressBar("training");
      const isolated = await isolatedTrainer(f);
      let run;
      try {
        run = await runLocalTraining({
          isolated,
          datasetFile: NAMED_DATASETS.includes(f.dataset) ? f.dataset : resolve(f.dataset),
          arch: f.model,
          modelSpecFile: f.modelSpec ? resolve(f.modelSpec) : undefined,
          hidden: f.hidden,
          activation: f.activation,
          epochs,
          targetEpsilon: f.targetEpsilon,
          noiseMultiplier: f.noiseMultiplier,
          delta: f.delta,
          maxGradNorm: f.maxGradNorm ?? d?.maxGradNorm ?? 1.0,
          batchSize: f.batchSize ?? d?.batchSize ?? 32,
          learningRate: f.lr ?? d?.learningRate ?? 0.05,
          momentum: f.momentum ?? d?.momentum ?? 0.9,
          accountant: f.accountant,
          workspace: resolve(f.workspace ?? defaultWorkspace()),
          testFraction: f.testFraction,
          seed: f.seed,
          baseline: f.baseline,
          onStep: f.json
            ? undefined
            : (s, t, loss) => bar.update(s, t, Number.isFinite(loss) ? `loss ${loss.toFixed(4)}` : ""),
        });
      } catch (err) {
        if (!(err instanceof PrivacyBudgetInsufficientError)) throw err;
        process.stderr.write(`enclave: error [${err.code}]: ${err.message}\n`);
        if (f.json) {
          const refused = {
            code: err.code,
            spent_epsilon: err.spentEpsilon,
            target_epsilon: err.targetEpsilon,
            affordable_steps: err.affordableSteps,
            planned_steps: err.plannedSteps,
            ledger: err.ledger,
          };
          process.stdout.write(JSON.stringify({ refused }) + "\n");
        }
        process.exitCode = ExitCode.BUDGET_REFUSED;
        return;
      }
      const { report, weights, spec, schema, standardizer } = run;
      bar.done();
      // A CSV-trained model carries its spec, schema and input scaling, so `predict`/`serve` can use it.
      const modelBytes =
        schema.format === "csv"
          ? encodeModelFile({ weights, spec, schema, standardizer })
          : serializeSafetensors(weights, { format: "pt" });
      writeOutputFiles(out, {
        "model.safetensors": modelBytes,
        "report.json": JSON.stringify(report, null, 2) + "\n",
      });
      if (f.json) {
        process.stdout.write(JSON.stringify({ ...report, out }) + "\n");
      } else {
        const p = report.privacy;
        const lines = [
          `dataset     ${report.dataset.id} (${report.dataset.train_rows} train / ${report.dataset.test_rows} test rows)`,
          `model       ${report.model.arch}, ${report.model.parameters} parameters, kernels ${report.training.kernels}`,
          `accuracy    ${(report.accuracy * 100).toFixed(2)}% (test loss ${report.loss.toFixed(4)})`,
          ...(report.baseline
            ? [`baseline    ${(report.baseline.accuracy * 100).toFixed(2)}% non-private, same settings`]
            : []),
          `epsilon     ${p.epsilon.toFixed(4)} (target ${p.target_epsilon}, RDP; ${p.epsilon_before.toFixed(4)} spent before this run)` +
            (p.accountant === "prv" ? `; PRV ${p.epsilon_reported.toFixed(4)}` : ""),
          `delta       ${p.accounting_delta}` +
            (p.accounting_delta !== p.delta
              ? ` (the dataset's accounting delta; the job asked for ${p.delta})`
              : ""),
          `steps       ${report.training.steps}/${report.training.planned_steps} (sigma ${p.noise_multiplier.toFixed(4)}${p.noise_calibrated ? ", calibrated" : ""}, q ${p.sample_rate.toFixed(5)}, C ${p.max_grad_norm})`,
          `isolation   ${formatIsolation(report.isolation)}`,
          `written     ${join(out, "model.safetensors")}, ${join(out, "report.json")}`,
        ];
        process.stdout.write(lines.join("\n") + "\n");
      }
      if (report.stopped_by) {
        process.stderr.write(
          `enclave: training stopped early [${report.stopped_by.code}]: ${report.stopped_by.message}\n`,
        );
        process.exitCode = EXIT_BUDGET_EXHAUSTED;
      }
    });
}
