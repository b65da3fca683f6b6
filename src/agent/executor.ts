import { Airlock } from "../airlock/airlock.js";
import { silentLogger, type Logger } from "../logging/logger.js";
import { Network } from "../model/network.js";
import { PrivacyGuard, type AccountantFromHistory, type GuardLedger } from "../privacy/guard.js";
import type { RandomSource } from "../random.js";
import type { AttestationReport } from "../schemas/attestation.js";
import type { Kernels } from "../tensor/kernels.js";
import type { TensorMap } from "../tensor/tensor.js";
import { SgdOptimizer } from "../training/optimizer.js";
import { poissonSchedule, train, type Examples } from "../training/trainer.js";
import type { AgentService } from "./agent-service.js";
import { clientAlgorithmFor } from "./client-algorithm.js";
import { AgentError, AttestationRefusedError, ClientLevelDpRefusedError } from "./errors.js";
import type { BudgetProbe, TaskOutcome, TrainTask } from "../federation/task.js";
import type { TaskInputs } from "../runtime/task-inputs.js";
import { runIsolatedRound, type IsolatedRoundHost, type IsolatedRounds } from "./isolated-round.js";

const controlKey = (task: TrainTask) => `${task.job.job_id}/${task.job.dataset_id}`;

/** The model must read the dataset's features and be the job's architecture (Data Sentry, step 2). */
export function checkModelFits(task: TrainTask, data: Examples): void {
  if (data.numFeatures !== task.model.input_dim)
    throw new AgentError(
      "MODEL_DATA_MISMATCH",
      `model input_dim ${task.model.input_dim} != dataset features ${data.numFeatures}`,
    );
  if (task.model.arch !== task.job.model_arch)
    throw new AgentError(
      "MODEL_DATA_MISMATCH",
      `task model arch "${task.model.arch}" is not the job's "${task.job.model_arch}"`,
    );
}

export const incompleteUpdate = (dropped: number) =>
  new AgentError(
    "AIRLOCK_INCOMPLETE_UPDATE",
    `the airlock dropped ${dropped} item(s); no complete update to send`,
  );

/** SCAFFOLD client control variates are remembered for this many (job, dataset) pairs. */
const MAX_REMEMBERED_JOBS = 8;

export interface ExecutorDeps {
  service: AgentService;
  /** Collects evidence and has it verified; resolves to the verifier's AttestationReport. */
  attest: () => Promise<AttestationReport>;
  /**
   * The Data Sentry path: resolves the dataset id inside the data root and validates its schema;
   * `files` are the dataset's files by guest name (what an isolated round's guest is given, read-only).
   */
  loadDataset: (datasetId: string) => Promise<SentryExamples>;
  ledger: GuardLedger;
  accountantFromHistory: AccountantFromHistory;
  kernels: Kernels;
  /** Noise and sampling randomness: the OS CSPRNG outside seeded simulations. */
  noise: RandomSource;
  sampling: RandomSource;
  init: RandomSource;
  /** Logs codes, ids and numbers only. */
  logger?: Logger;
  /**
   * The data owner's opt-in to DP_FEDAVG jobs: training then has no per-example noise, and the
   * update is protected only by the coordinator's client-level DP (clipping and noise in its
   * enclave). Off by default: such tasks are refused.
   */
  acceptClientLevelDp?: boolean;
  /**
   * `--isolation microvm|process`: each round's Validate -> Train -> Sanitize runs in this runtime's
   * guest (src/agent/isolated-round.ts); attestation, the ledger and the reservation stay here.
   */
  isolated?: IsolatedRounds;
}

/** A dataset as the Data Sentry loaded it: the examples, the records' identity, its files by guest name. */
export type SentryExamples = Examples & { identity?: string; files?: TaskInputs };

/**
 * Runs one task in the fixed order Attest -> Validate -> Train -> Sanitize. Nothing but the
 * Airlock's output leaves `run`; errors carry codes and field names, never data.
 */
export class Executor {
  /** SCAFFOLD's client control variate c_i, kept across rounds. */
  private clientControl: Map<string, TensorMap> = new Map();

  constructor(private readonly deps: ExecutorDeps) {}

  async run(task: TrainTask): Promise<TaskOutcome> {
    const { service } = this.deps;
    const clientLevel = this.clientLevel(task);
    const log = this.logFor(task);
    log.debug({ dataset_id: task.job.dataset_id, strategy: task.job.strategy }, "task received");
    // 1. Attest
    const report = await this.deps.attest();
    service.setAttestation(report);
    log.info(
      { status: report.status, hardware_type: report.hardware_type, measurement: report.measurement_hash },
      "attested",
    );
    if (report.status !== "TRUSTED") {
      service.count("tasks_refused");
      log.warn({ status: report.status }, "refusing to train: attestation not trusted");
      throw new AttestationRefusedError(report.status);
    }
    const out = this.deps.isolated
      ? await runIsolatedRound(this.isolatedHost(this.deps.isolated), task, clientLevel, log)
      : await this.train(task, clientLevel, log);
    service.count("tasks_completed");
    return out;
  }

  /**
   * Validate -> Train -> Sanitize in this process: an in-process agent's round, and an isolated
   * round inside its guest (on a ReservedLedger there). Returns only the Airlock's output.
   */
  async train(
    task: TrainTask,
    clientLevel = this.clientLevel(task),
    log = this.logFor(task),
  ): Promise<TaskOutcome> {
    const { service } = this.deps;
    // 2. Validate
    const data = await this.deps.loadDataset(task.job.dataset_id);
    checkModelFits(task, data);
    // 3. Train
    const net = new Network(task.model, this.deps.kernels, this.deps.init);
    net.loadWeights(task.global);
    // DP_FEDAVG spends no local per-example budget: no guard, and the sidecar keeps showing the dataset's ledger.
    const guard = clientLevel ? null : await this.guardFor(task, data).init();
    if (guard) service.setGuard(guard, task.job.dataset_id, task.job.privacy.target_epsilon);
    const key = controlKey(task);
    const algorithm = clientAlgorithmFor(task, this.clientControl.get(key));
    const result = await train(net, this.deps.kernels, data, {
      epochs: task.plan.epochs,
      batchSize: task.plan.batchSize,
      optimizer: new SgdOptimizer(this.deps.kernels, task.plan.learningRate, task.plan.momentum),
      sampling: this.deps.sampling,
      // DP_FEDAVG: the non-private path of the same engine; privacy is added at the coordinator.
      dp: guard
        ? {
            noiseMultiplier: task.job.privacy.noise_multiplier,
            maxGradNorm: task.job.privacy.max_grad_norm,
            guard,
            noise: this.deps.noise,
          }
        : undefined,
      gradientHook: algorithm.gradientHook,
    });
    service.count("train_steps", result.steps);
    service.count("train_examples", result.examplesProcessed);
    const weights = net.weights();
    const control = algorithm.finish(weights, result.steps, task.plan.learningRate);
    if (control) this.rememberControl(task, control.clientControl);

    // 4. Sanitize
    const airlock = new Airlock(task.global);
    const out = airlock.sanitize({
      tensors: weights,
      metrics: {
        loss: result.meanLoss,
        examples: data.rows,
        // No local epsilon under DP_FEDAVG: the coordinator accounts the client-level budget.
        ...(guard ? { epsilon: guard.spentEpsilon() } : {}),
        // The delta the epsilon is at (the dataset's accounting delta when smaller than the job's).
        delta: guard ? guard.delta : task.job.privacy.delta,
        steps: result.steps,
      },
    });
    let dropped = out.dropped.length;
    let controlDelta;
    if (control) {
      const c = airlock.sanitize({ tensors: control.delta });
      dropped += c.dropped.length;
      if (airlock.isComplete(c)) controlDelta = c.tensors;
    }
    this.countDrops(
      dropped,
      [...out.dropped].map((d) => `${d.key}: ${d.reason}`),
      log,
    );
    log.info(
      {
        steps: result.steps,
        examples: data.rows,
        epsilon: out.metrics.epsilon,
        loss: out.metrics.loss,
        stopped_by: result.stoppedBy?.code,
      },
      "task trained and sanitised",
    );
    if (!airlock.isComplete(out)) throw incompleteUpdate(dropped);
    return {
      clientId: service.nodeId,
      status: result.stoppedBy ? "budget_exhausted" : "ok",
      weights: out.tensors,
      controlDelta,
      numExamples: data.rows,
      metrics: out.metrics,
      dropped,
    };
  }

  /** SCAFFOLD's c_i of this task's (job, dataset), if one is kept. */
  controlOf(task: TrainTask): TensorMap | undefined {
    return this.clientControl.get(controlKey(task));
  }

  /** Keep c_i for the few most recent jobs only: a long-running agent must not grow forever. */
  rememberControl(task: TrainTask, control: TensorMap): void {
    const key = controlKey(task);
    this.clientControl.delete(key);
    this.clientControl.set(key, control);
    while (this.clientControl.size > MAX_REMEMBERED_JOBS)
      this.clientControl.delete(this.clientControl.keys().next().value!);
  }

  private countDrops(dropped: number, items: string[], log: Logger): void {
    this.deps.service.count("airlock_drops", dropped);
    if (dropped > 0) log.warn({ dropped, items }, "airlock dropped items");
  }

  private logFor(task: TrainTask): Logger {
    return (this.deps.logger ?? silentLogger).child({
      job_id: task.job.job_id,
      round: task.round,
      node: this.deps.service.nodeId,
    });
  }

  /** What the host side of an isolated round uses of this executor. */
  private isolatedHost(isolated: IsolatedRounds): IsolatedRoundHost {
    return {
      isolated,
      deps: this.deps,
      guardFor: (task, data) => this.guardFor(task, data),
      controlOf: (task) => this.controlOf(task),
      rememberControl: (task, c) => this.rememberControl(task, c),
      countDrops: (n, items, log) => this.countDrops(n, items, log),
    };
  }

  /** Epsilon now and after one more round of this task's plan (numbers only). */
  async probe(task: TrainTask): Promise<BudgetProbe> {
    const clientLevel = this.clientLevel(task);
    const data = await this.deps.loadDataset(task.job.dataset_id);
    const guard = await this.guardFor(task, data).init();
    if (clientLevel) {
      // A DP_FEDAVG round adds nothing to this dataset's per-example ledger.
      const spent = guard.spentEpsilon();
      return { epsilon: spent, nextEpsilon: spent, limit: guard.limit, examples: data.rows };
    }
    const { sampleRate, stepsPerEpoch } = poissonSchedule(data.rows, task.plan.batchSize);
    return {
      epsilon: guard.spentEpsilon(),
      nextEpsilon: guard.epsilonAfter(sampleRate, task.plan.epochs * stepsPerEpoch),
      limit: guard.limit,
      examples: data.rows,
    };
  }

  /** True for a DP_FEDAVG task this agent accepts; throws when it does not accept them. */
  private clientLevel(task: TrainTask): boolean {
    if (task.job.privacy.mechanism !== "DP_FEDAVG") return false;
    if (this.deps.acceptClientLevelDp !== true) {
      this.deps.service.count("tasks_refused");
      throw new ClientLevelDpRefusedError();
    }
    return true;
  }

  /** The budget is the data's: keyed by the records' identity, never by the id the job used. */
  private guardFor(task: TrainTask, data: SentryExamples): PrivacyGuard {
    return new PrivacyGuard({
      ledger: this.deps.ledger,
      datasetId: data.identity ?? task.job.dataset_id,
      legacyKeys: data.identity ? [task.job.dataset_id] : undefined,
      rows: data.rows,
      jobId: task.job.job_id,
      targetEpsilon: task.job.privacy.target_epsilon,
      delta: task.job.privacy.delta,
      noiseMultiplier: task.job.privacy.noise_multiplier,
      accountantFromHistory: this.deps.accountantFromHistory,
    });
  }
}
