import { randomUUID } from "node:crypto";
import { basename, dirname, extname, join } from "node:path";
import { fashionMnistFiles, findFashionMnist } from "../data/fashion-mnist.js";
import { datasetTaskInputs, type TaskInputs } from "../runtime/task-inputs.js";
import {
  loadDataset,
  loadFashionMnistSplits,
  prepareDataset,
  type Dataset,
  type LoadedDataset,
} from "../data/index.js";
import { EnclaveError } from "../errors.js";
import { Network } from "../model/network.js";
import { specForDataset } from "../model/registry.js";
import { EPSILON_HARD_CEILING, defaultDeltaFor } from "../schemas/privacy.js";
import { readRegularFile } from "../storage/regular-file.js";
import { weightsHash } from "../model/safetensors.js";
import { createAccountant, getNoiseMultiplier, type AccountantName } from "../privacy/accountant/index.js";
import { BudgetLedger } from "../privacy/budget-ledger.js";
import { PrivacyGuard, type GuardLedger } from "../privacy/guard.js";
import type { StepReservation } from "../privacy/reserved-ledger.js";
import { Airlock } from "../airlock/airlock.js";
import { RuntimeError, RuntimeErrorCode } from "../runtime/errors.js";
import { randomStream, type RandomSource } from "../random.js";
import type { DatasetSchema } from "../schemas/dataset.js";
import type { Standardizer } from "../data/standardize.js";
import { parseConfigText } from "../schemas/config-text.js";
import { parseContract } from "../schemas/contract.js";
import { ModelSpec } from "../schemas/model.js";
import { openDatabase } from "../storage/database.js";
import { kernels } from "../tensor/backend.js";
import type { TensorMap } from "../tensor/tensor.js";
import { SgdOptimizer } from "./optimizer.js";
import { assertTrainingFits } from "./memory-estimate.js";
import { evaluate, poissonSchedule, train } from "./trainer.js";

/** A run is refused before training when the budget allows fewer than this share of its planned steps. */
export const MIN_MEANINGFUL_STEPS_FRACTION = 0.1;

/** The dataset's budget cannot pay for a meaningful part of the run: nothing was trained or written. */
export class PrivacyBudgetInsufficientError extends EnclaveError {
  constructor(
    readonly spentEpsilon: number,
    readonly targetEpsilon: number,
    readonly affordableSteps: number,
    readonly plannedSteps: number,
    readonly ledger: string,
    detail: string,
  ) {
    super("PRIVACY_BUDGET_INSUFFICIENT", detail);
  }
}

export interface LocalTrainingOptions {
  /** A dataset file (its schema beside it), or a name from NAMED_DATASETS. */
  datasetFile: string;
  arch: string;
  /** A ModelSpec file (JSON or YAML) to train instead of the named architecture. */
  modelSpecFile?: string;
  hidden?: number[];
  activation?: "relu" | "tanh" | "gelu";
  epochs: number;
  targetEpsilon: number;
  /** Calibrated from the target when omitted. */
  noiseMultiplier?: number;
  /** Omitted: defaultDeltaFor(the training rows), min(1e-5, 0.1/n). */
  delta?: number;
  maxGradNorm: number;
  batchSize: number;
  learningRate: number;
  momentum: number;
  accountant: AccountantName;
  /** Holds the persistent privacy ledger (embedded PostgreSQL unless DATABASE_URL is set). */
  workspace: string;
  testFraction: number;
  /** Reproducible split, init, sampling and noise; omit in production (OS CSPRNG). */
  seed?: number | string;
  /** Also train the non-private baseline with the same settings. */
  baseline?: boolean;
  onStep?: (step: number, totalSteps: number, loss: number) => void;
}

export interface LocalTrainingReport {
  dataset: {
    id: string;
    sha256: string;
    train_rows: number;
    test_rows: number;
    features: number;
    classes: number;
  };
  model: { arch: string; parameters: number; sha256: string };
  privacy: {
    mechanism: "DP_SGD";
    accountant: AccountantName;
    noise_multiplier: number;
    noise_calibrated: boolean;
    max_grad_norm: number;
    sample_rate: number;
    expected_batch_size: number;
    target_epsilon: number;
    /** The delta the job asked for, or min(1e-5, 0.1/n) for its n training rows when it named none. */
    delta: number;
    /** The delta `epsilon` is at: min(delta, the dataset's accounting delta); see docs/privacy.md. */
    accounting_delta: number;
    /** Spent on this dataset, all jobs included, as of this run's last step (RDP: the halting accountant). */
    epsilon: number;
    /** The same spend under the chosen reporting accountant (PRV is tighter than RDP). */
    epsilon_reported: number;
    epsilon_before: number;
  };
  training: {
    epochs: number;
    steps: number;
    planned_steps: number;
    learning_rate: number;
    batch_size: number;
    kernels: string;
    seconds: number;
  };
  accuracy: number;
  loss: number;
  baseline?: { accuracy: number; loss: number };
  stopped_by?: { code: string; message: string };
  job_id: string;
  isolation: IsolationReport;
}

/** Datasets `train --dataset` takes by name; Fashion-MNIST uses its official train/test split. */
export const NAMED_DATASETS: readonly string[] = ["fashion-mnist"];

interface TrainingData {
  dataset: Dataset;
  source: LoadedDataset["source"];
  schema: DatasetSchema;
  standardizer: Standardizer | null;
  trainSet: Dataset;
  test: Dataset;
}

async function trainingData(o: LocalTrainingOptions, split: RandomSource): Promise<TrainingData> {
  if (o.datasetFile === "fashion-mnist") {
    const { train, test } = await loadFashionMnistSplits();
    // Pixels stay in [0, 1]: no standardisation for images.
    const { dataset, source, schema } = train;
    return { dataset, source, schema, standardizer: null, trainSet: dataset, test: test.dataset };
  }
  const { dataset, source, schema } = await loadDataset(dirname(o.datasetFile), basename(o.datasetFile));
  const prepared = prepareDataset(dataset, { testFraction: o.testFraction, rng: split });
  return {
    dataset,
    source,
    schema,
    standardizer: prepared.standardizer,
    trainSet: prepared.train,
    test: prepared.test,
  };
}

/** A model spec is a short declarative file: anything larger is refused unread. */
const MAX_MODEL_SPEC_BYTES = 1 << 20;

/** A ModelSpec file, validated, that must read the dataset's features and predict its classes. */
export async function modelSpecFromFile(file: string, dataset: Dataset): Promise<ModelSpec> {
  const bytes = await readRegularFile(
    file,
    "model spec file (--model-spec)",
    MAX_MODEL_SPEC_BYTES,
    "MODEL_SPEC_UNREADABLE",
  );
  const text = bytes.toString("utf8");
  const spec = parseContract(ModelSpec, parseConfigText(text, "model spec"), "model spec");
  if (spec.input_dim !== dataset.numFeatures)
    throw new EnclaveError(
      "MODEL_SPEC_MISMATCH",
      `model spec input_dim ${spec.input_dim} != dataset features ${dataset.numFeatures}`,
    );
  if (spec.num_classes !== dataset.numClasses)
    throw new EnclaveError(
      "MODEL_SPEC_MISMATCH",
      `model spec num_classes ${spec.num_classes} != dataset classes ${dataset.numClasses}`,
    );
  return spec;
}

/** Everything a run is decided by before its first step: the data, the model, the schedule, sigma. */
export interface TrainingPlan extends TrainingData {
  spec: ModelSpec;
  sampleRate: number;
  stepsPerEpoch: number;
  expectedBatchSize: number;
  plannedSteps: number;
  sigma: number;
  /** The job's delta: the one asked for, or defaultDeltaFor(the training rows). */
  delta: number;
  /** The ledger key: the records' identity, not their file. */
  datasetKey: string;
}

/** Load the data through the Data Sentry, build the model spec and fix the schedule and noise. */
export async function planLocalTraining(o: LocalTrainingOptions): Promise<TrainingPlan> {
  const data = await trainingData(o, randomStream(o.seed, "split"));
  const spec = o.modelSpecFile
    ? await modelSpecFromFile(o.modelSpecFile, data.dataset)
    : specForDataset(o.arch, data.dataset, { hidden: o.hidden, activation: o.activation });
  assertTrainingFits(spec, o.batchSize, data.dataset.rows);
  const { sampleRate, stepsPerEpoch, expectedBatchSize } = poissonSchedule(data.trainSet.rows, o.batchSize);
  const plannedSteps = o.epochs * stepsPerEpoch;
  const delta = o.delta ?? defaultDeltaFor(data.trainSet.rows);
  const sigma =
    o.noiseMultiplier ??
    // Calibrated on the halting accountant, so the planned steps are the steps the guard allows.
    getNoiseMultiplier({
      accountant: "rdp",
      targetEpsilon: o.targetEpsilon,
      delta,
      sampleRate,
      steps: plannedSteps,
    });
  return {
    ...data,
    spec,
    sampleRate,
    stepsPerEpoch,
    expectedBatchSize,
    plannedSteps,
    sigma,
    delta,
    datasetKey: data.source.identity,
  };
}

/** The run's guard, the same in-process and in an isolated runtime (there on a ReservedLedger). */
export function trainingGuard(
  o: LocalTrainingOptions,
  plan: TrainingPlan,
  ledger: GuardLedger,
  jobId: string,
): PrivacyGuard {
  return new PrivacyGuard({
    ledger,
    datasetId: plan.datasetKey,
    // Before records identities, train keyed the ledger by the file's byte hash.
    legacyKeys: [`sha256:${plan.source.sha256}`],
    rows: plan.trainSet.rows,
    jobId,
    targetEpsilon: o.targetEpsilon,
    delta: plan.delta,
    noiseMultiplier: plan.sigma,
    // RDP halts: O(orders) per step. PRV (about 1 s per query) is a reporting accountant only.
    accountantFromHistory: (h) => createAccountant("rdp", h),
  });
}

/** What a run's training produced; in an isolated runtime, what comes back through its Airlock. */
export interface TrainedModel {
  weights: TensorMap;
  steps: number;
  accuracy: number;
  loss: number;
  baseline?: { accuracy: number; loss: number };
  stoppedBy?: { code: string; message: string };
  kernels: string;
}

/** DP-SGD under `guard` (and the baseline when asked), then the held-out evaluation. */
export async function trainPlanned(
  o: LocalTrainingOptions,
  plan: TrainingPlan,
  guard: PrivacyGuard,
): Promise<TrainedModel> {
  const k = kernels();
  const rng = (label: string): RandomSource => randomStream(o.seed, label);
  const net = new Network(plan.spec, k, rng("init"));
  const result = await train(net, k, plan.trainSet, {
    epochs: o.epochs,
    batchSize: o.batchSize,
    optimizer: new SgdOptimizer(k, o.learningRate, o.momentum),
    sampling: rng("sampling"),
    dp: { noiseMultiplier: plan.sigma, maxGradNorm: o.maxGradNorm, guard, noise: rng("noise") },
    onStep: o.onStep ? (s) => o.onStep!(s.step, s.totalSteps, s.loss) : undefined,
  });
  const metrics = evaluate(net, plan.test);
  let baseline: TrainedModel["baseline"];
  if (o.baseline) {
    const plain = new Network(plan.spec, k, rng("init"));
    await train(plain, k, plan.trainSet, {
      epochs: o.epochs,
      batchSize: o.batchSize,
      optimizer: new SgdOptimizer(k, o.learningRate, o.momentum),
      sampling: rng("sampling-baseline"),
    });
    baseline = evaluate(plain, plan.test);
  }
  return {
    weights: net.weights(),
    steps: result.steps,
    accuracy: metrics.accuracy,
    loss: metrics.loss,
    baseline,
    stoppedBy: result.stoppedBy,
    kernels: k.name,
  };
}

/**
 * Where a run's training happens when it is not this process: an isolated runtime (a microVM, or a
 * child process) that trains on a ReservedLedger holding exactly `reservation`'s steps.
 */
export interface IsolatedTrainer {
  readonly isolation: IsolationReport;
  /**
   * Run the task; `options` name its files by the keys of `inputs` (guest name -> host path), the
   * only files the runtime exposes to the task, read-only.
   */
  train(
    options: LocalTrainingOptions,
    reservation: StepReservation,
    inputs: Record<string, string>,
  ): Promise<TrainedModel>;
}

/** The isolation a run used, as the report and `--json` state it. */
export interface IsolationReport {
  mode: "microvm" | "process" | "none";
  vmm?: string;
  accel?: "kvm" | "emulated";
  channel?: string;
  /** SHA-256 of the runtime manifest (microvm). */
  measurement?: string;
}

/** Trains one model locally with DP-SGD under the Privacy Guard; the CLI's `train` verb. */
export async function runLocalTraining(o: LocalTrainingOptions & { isolated?: IsolatedTrainer }): Promise<{
  report: LocalTrainingReport;
  weights: TensorMap;
  spec: ModelSpec;
  /** The validated schema of the training file and the input scaling fitted on its train split. */
  schema: DatasetSchema;
  standardizer: Standardizer | null;
}> {
  const t0 = Date.now();
  const plan = await planLocalTraining(o);
  const { dataset, source, schema, standardizer, trainSet, test, spec, sampleRate, plannedSteps, sigma } =
    plan;
  const jobId = randomUUID();
  const datasetKey = plan.datasetKey;
  const db = await openDatabase({ workspace: o.workspace });
  try {
    const ledger = await BudgetLedger.open(db);
    const guard = await trainingGuard(o, plan, ledger, jobId).init();
    const epsilonBefore = guard.spentEpsilon();
    refuseUnlessMeaningful(guard, sampleRate, plannedSteps, {
      target: o.targetEpsilon,
      ledger: db.kind === "postgres" ? "the PostgreSQL server in DATABASE_URL" : join(o.workspace, "db"),
      workspace: o.workspace,
      key: datasetKey,
    });
    const trained = o.isolated
      ? await trainIsolated(o, o.isolated, plan, guard, ledger)
      : await trainPlanned(o, plan, guard);
    const weights = trained.weights;
    // The epsilon reported is the host's ledger's, never a number an isolated task sent.
    const host = o.isolated ? await trainingGuard(o, plan, ledger, jobId).init() : guard;
    const spent = host.spentEpsilon();
    const history = (await ledger.history(datasetKey)) ?? [];
    const reported =
      o.accountant === "rdp" ? spent : createAccountant(o.accountant, history).getEpsilon(host.delta);
    const report: LocalTrainingReport = {
      dataset: {
        id: source.id,
        sha256: source.sha256,
        train_rows: trainSet.rows,
        test_rows: test.rows,
        features: dataset.numFeatures,
        classes: dataset.numClasses,
      },
      model: { arch: spec.arch, parameters: parameterCount(weights), sha256: weightsHash(weights) },
      privacy: {
        mechanism: "DP_SGD",
        accountant: o.accountant,
        noise_multiplier: sigma,
        noise_calibrated: o.noiseMultiplier === undefined,
        max_grad_norm: o.maxGradNorm,
        sample_rate: sampleRate,
        expected_batch_size: plan.expectedBatchSize,
        target_epsilon: o.targetEpsilon,
        delta: plan.delta,
        accounting_delta: host.delta,
        epsilon: spent,
        epsilon_reported: reported,
        epsilon_before: epsilonBefore,
      },
      training: {
        epochs: o.epochs,
        steps: trained.steps,
        planned_steps: plannedSteps,
        learning_rate: o.learningRate,
        batch_size: o.batchSize,
        kernels: trained.kernels,
        seconds: (Date.now() - t0) / 1000,
      },
      accuracy: trained.accuracy,
      loss: trained.loss,
      baseline: trained.baseline,
      stopped_by: trained.stoppedBy,
      job_id: jobId,
      isolation: o.isolated?.isolation ?? { mode: "none" },
    };
    return { report, weights, spec, schema, standardizer };
  } finally {
    await db.close();
  }
}

const parameterCount = (w: TensorMap) => [...w.values()].reduce((n, t) => n + t.data.length, 0);

/**
 * The host's side of an isolated run: reserve the run's steps in the persistent ledger before the
 * task starts, hand the task and the reservation to the runtime, take back only what passes the
 * Airlock, and charge the reservation (docs/runtime.md: a task that was handed over is charged every
 * reserved step, whatever it reports; one that never reached the runtime is charged none).
 */
async function trainIsolated(
  o: LocalTrainingOptions,
  runtime: IsolatedTrainer,
  plan: TrainingPlan,
  guard: PrivacyGuard,
  ledger: BudgetLedger,
): Promise<TrainedModel> {
  const { options, inputs } = isolatedInputs(o, plan);
  const { id, ...reservation } = await guard.reserveForTask(plan.sampleRate, plan.plannedSteps);
  let charged = reservation.steps;
  try {
    const out = await runtime.train(
      { ...options, delta: plan.delta, noiseMultiplier: plan.sigma },
      reservation,
      inputs,
    );
    return admitTrainedModel(plan, out, reservation.steps);
  } catch (err) {
    if (err instanceof RuntimeError && err.code === RuntimeErrorCode.TASK_NOT_STARTED) charged = 0;
    throw err;
  } finally {
    await ledger.settle(id, charged);
  }
}

/**
 * The files an isolated task may read (the dataset, its schema, IDX labels, the model spec), by guest
 * name. The named Fashion-MNIST enters as its four IDX files (both official splits), found where the
 * host found them; the guest looks for it in its data root.
 */
function isolatedInputs(
  o: LocalTrainingOptions,
  plan: TrainingPlan,
): { options: LocalTrainingOptions; inputs: Record<string, string> } {
  const named = o.datasetFile === "fashion-mnist";
  const files = named ? fashionMnistTaskInputs() : datasetTaskInputs(dirname(o.datasetFile), plan);
  if (!files)
    throw new EnclaveError(
      "ISOLATION_UNSUPPORTED",
      "--dataset: an image_folder dataset does not enter an isolated runtime in this build; use --isolation none",
    );
  const inputs = { ...files.inputs };
  const modelSpecFile = o.modelSpecFile ? "model-spec" + extname(o.modelSpecFile) : undefined;
  if (o.modelSpecFile) inputs[modelSpecFile!] = o.modelSpecFile;
  return {
    options: { ...o, onStep: undefined, datasetFile: named ? o.datasetFile : files.dataset, modelSpecFile },
    inputs,
  };
}

/** Fashion-MNIST's train and test IDX files where the host found them (DATASET_NOT_FOUND otherwise). */
function fashionMnistTaskInputs(): TaskInputs {
  const dir = findFashionMnist();
  const inputs: Record<string, string> = {};
  for (const split of ["train", "test"] as const) {
    const f = dir ? fashionMnistFiles(dir, split) : null;
    if (!dir || !f) throw new EnclaveError("DATASET_NOT_FOUND", "--dataset: Fashion-MNIST was not found");
    inputs[f.images] = join(dir, f.images);
    inputs[f.labels] = join(dir, f.labels);
  }
  return { dataset: "fashion-mnist", inputs };
}

/** The Airlock on the host side of an isolated run: the model's tensors and bounded numbers only. */
function admitTrainedModel(plan: TrainingPlan, out: TrainedModel, reserved: number): TrainedModel {
  const template = new Network(plan.spec, kernels(), randomStream(0, "template")).weights();
  const airlock = new Airlock(template);
  const main = airlock.sanitize({
    tensors: out.weights,
    metrics: { accuracy: out.accuracy, loss: out.loss, steps: out.steps },
  });
  if (!airlock.isComplete(main) || main.dropped.length > 0)
    throw new EnclaveError(
      "AIRLOCK_INCOMPLETE_UPDATE",
      `the isolated task's model did not pass the airlock (${main.dropped.map((d) => d.key).join(", ")})`,
    );
  const steps = main.metrics.steps;
  if (steps === undefined || !Number.isInteger(steps) || steps < 0 || steps > reserved)
    throw new EnclaveError(
      "RESERVATION_EXCEEDED",
      `the isolated task reported steps outside [0, ${reserved}] (the reserved steps)`,
    );
  const base = out.baseline && airlock.sanitize({ metrics: out.baseline }).metrics;
  return {
    weights: main.tensors,
    steps,
    accuracy: main.metrics.accuracy ?? NaN,
    loss: main.metrics.loss ?? NaN,
    baseline: base ? { accuracy: base.accuracy ?? NaN, loss: base.loss ?? NaN } : undefined,
    stoppedBy:
      steps < plan.plannedSteps
        ? {
            code: "PRIVACY_BUDGET_EXHAUSTED",
            message: `the budget allowed ${reserved} of the ${plan.plannedSteps} planned steps`,
          }
        : undefined,
    kernels: typeof out.kernels === "string" ? out.kernels.slice(0, 64) : "unknown",
  };
}

/** Refuses (PrivacyBudgetInsufficientError) a run the budget can pay for only a sliver of. */
function refuseUnlessMeaningful(
  guard: PrivacyGuard,
  sampleRate: number,
  plannedSteps: number,
  at: { target: number; ledger: string; workspace: string; key: string },
): void {
  const affordable = guard.affordableSteps(sampleRate, plannedSteps);
  if (affordable >= Math.max(1, Math.ceil(MIN_MEANINGFUL_STEPS_FRACTION * plannedSteps))) return;
  const spent = guard.spentEpsilon();
  throw new PrivacyBudgetInsufficientError(
    spent,
    at.target,
    affordable,
    plannedSteps,
    at.ledger,
    `refusing to train: this dataset has already spent epsilon ${spent.toFixed(4)} (at delta ${guard.delta}), ` +
      `so the target ${at.target} (ceiling ${EPSILON_HARD_CEILING}) leaves ${affordable} of the ${plannedSteps} planned steps; ` +
      `nothing was trained or written. Ledger: ${at.ledger} (see: enclave ledger show --workspace ${at.workspace} --dataset ${at.key}). ` +
      `Use new data, a higher target, fewer epochs or a larger noise multiplier; an operator may reset the dataset's budget ` +
      `(enclave ledger reset), an audited action.`,
  );
}
