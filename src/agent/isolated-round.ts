import { Airlock } from "../airlock/airlock.js";
import { EnclaveError } from "../errors.js";
import { decodeOutcome, encodeTask, type Parts } from "../federation/task-wire.js";
import type { TaskOutcome, TrainTask } from "../federation/task.js";
import type { Logger } from "../logging/logger.js";
import type { AccountantName } from "../privacy/accountant/index.js";
import { PrivacyBudgetExhaustedError, type PrivacyGuard } from "../privacy/guard.js";
import type { StepReservation } from "../privacy/reserved-ledger.js";
import { SeededRandom, type RandomSource } from "../random.js";
import { GuestReportedError, RuntimeError, RuntimeErrorCode } from "../runtime/errors.js";
import {
  decodeTensors,
  encodeParts,
  encodeTensors,
  type RoundStreams,
  type RoundTaskArgs,
  type RoundTaskReply,
} from "../runtime/guest/round-task.js";
import { kernelPins } from "../runtime/guest/train-task.js";
import type { RuntimeEvent } from "../runtime/task-runtime.js";
import type { TensorMap } from "../tensor/tensor.js";
import type { IsolationReport } from "../training/local-training.js";
import { poissonSchedule } from "../training/trainer.js";
import { AgentError } from "./errors.js";
import { checkModelFits, incompleteUpdate, type ExecutorDeps, type SentryExamples } from "./executor.js";

/** Where an isolated round runs: a TaskRuntime (a microVM booted for the task, or a child process). */
export interface RoundRuntime {
  readonly isolation: IsolationReport;
  round(args: object, inputs: Record<string, string>, onEvent?: (e: RuntimeEvent) => void): Promise<unknown>;
}

/** What an isolated round's guest did, as the site's audit chain records it: ids, digests and numbers. */
export interface GuestTaskRecord {
  mode: "microvm" | "process";
  measurement?: string;
  boot_ms?: number;
  steps_reserved: number;
  steps_charged: number;
  outcome: "released" | "failed";
  /** The failure's code. */
  reason?: string;
  exit_code?: number;
  exit_signal?: string;
  /** SHA-256 of the tensors the guest's Airlock released (its task_end event). */
  guest_sha256?: string;
}

/** An agent's `--isolation microvm|process`: the runtime, the accountant its guest's guard uses, the audit hook. */
export interface IsolatedRounds {
  runtime: RoundRuntime;
  accountant: AccountantName;
  /** Called once per round that reached the runtime, before its update (if any) leaves. */
  record?: (task: TrainTask, record: GuestTaskRecord) => Promise<void>;
}

/** What the host side of an isolated round uses of its Executor. */
export interface IsolatedRoundHost {
  isolated: IsolatedRounds;
  deps: ExecutorDeps;
  guardFor(task: TrainTask, data: SentryExamples): PrivacyGuard;
  controlOf(task: TrainTask): TensorMap | undefined;
  rememberControl(task: TrainTask, control: TensorMap): void;
  countDrops(dropped: number, items: string[], log: Logger): void;
}

/** The host's reservation for the round: the most of its planned steps the budget allows (0 if none). */
async function reserveRound(
  guard: PrivacyGuard,
  deps: ExecutorDeps,
  task: TrainTask,
  data: SentryExamples,
): Promise<{ id: string | null; reservation: StepReservation }> {
  const { sampleRate, stepsPerEpoch } = poissonSchedule(data.rows, task.plan.batchSize);
  try {
    const { id, ...reservation } = await guard.reserveForTask(sampleRate, task.plan.epochs * stepsPerEpoch);
    return { id, reservation };
  } catch (err) {
    if (!(err instanceof PrivacyBudgetExhaustedError)) throw err;
    // No step fits: the guest's guard stops before its first step, as an in-process one does.
    const datasetId = data.identity ?? task.job.dataset_id;
    const p = task.job.privacy;
    return {
      id: null,
      reservation: {
        datasetId,
        jobId: task.job.job_id,
        noiseMultiplier: p.noise_multiplier,
        sampleRate,
        delta: p.delta,
        steps: 0,
        before: await deps.ledger.state(datasetId),
      },
    };
  }
}

const seededStates = (s: RoundStreams<RandomSource>): RoundStreams<SeededRandom> | null =>
  s.noise instanceof SeededRandom && s.sampling instanceof SeededRandom && s.init instanceof SeededRandom
    ? (s as RoundStreams<SeededRandom>)
    : null;

/**
 * The host's side of a round under `--isolation microvm|process`: the Data Sentry check and the
 * ledger stay here; the host reserves the round's steps before the guest starts (PrivacyGuard's one
 * reservation path), the guest runs Validate -> Train -> Sanitize on that reservation, and what comes
 * back passes this side's Airlock before it is an outcome. Charging as `enclave train --isolation`
 * (docs/runtime.md): a round handed to the guest is charged every reserved step; one that never
 * reached it, none. A guest's failure is a typed error with its code only (its text stays behind).
 */
export async function runIsolatedRound(
  host: IsolatedRoundHost,
  task: TrainTask,
  clientLevel: boolean,
  log: Logger,
): Promise<TaskOutcome> {
  const { deps, isolated } = host;
  const data = await deps.loadDataset(task.job.dataset_id);
  checkModelFits(task, data);
  if (!data.files)
    throw new AgentError(
      "ISOLATION_UNSUPPORTED",
      "job.dataset_id: an image_folder dataset does not enter an isolated runtime in this build",
    );
  const guard = clientLevel ? null : await host.guardFor(task, data).init();
  if (guard) deps.service.setGuard(guard, task.job.dataset_id, task.job.privacy.target_epsilon);
  const reserved = guard ? await reserveRound(guard, deps, task, data) : null;
  const streams = seededStates({ noise: deps.noise, sampling: deps.sampling, init: deps.init });
  const { json, parts } = encodeTask(task);
  const control = host.controlOf(task);
  const args: RoundTaskArgs = {
    nodeId: deps.service.nodeId,
    task: json,
    parts: encodeParts(parts),
    ...(control ? { clientControl: encodeTensors(control) } : {}),
    dataset: data.files.dataset,
    reservation: reserved?.reservation ?? null,
    streams: streams && {
      noise: streams.noise.state(),
      sampling: streams.sampling.state(),
      init: streams.init.state(),
    },
    accountant: isolated.accountant,
    acceptClientLevelDp: clientLevel,
    kernels: kernelPins(),
  };
  const steps = reserved?.reservation.steps ?? 0;
  const { isolation } = isolated.runtime;
  const record: GuestTaskRecord = {
    mode: isolation.mode as "microvm" | "process",
    ...(isolation.measurement ? { measurement: isolation.measurement } : {}),
    steps_reserved: steps,
    steps_charged: steps,
    outcome: "failed",
  };
  const onEvent = (e: RuntimeEvent) => {
    log.info({ runtime_event: e }, `runtime ${e.event}`);
    if (e.event === "boot" && typeof e.ms === "number") record.boot_ms = e.ms;
    if (e.event === "task_end" && typeof e.model_sha256 === "string") record.guest_sha256 = e.model_sha256;
    if (e.event === "exit" && typeof e.code === "number") record.exit_code = e.code;
    if (e.event === "exit" && typeof e.signal === "string") record.exit_signal = e.signal;
  };
  let started = true;
  try {
    const reply = await isolated.runtime.round(args, data.files.inputs, onEvent);
    if (reserved?.id) await deps.ledger.settle(reserved.id, steps);
    const out = await admitRound(host, task, data, reply, steps, streams, log);
    record.outcome = "released";
    return out;
  } catch (err) {
    started = !(err instanceof RuntimeError && err.code === RuntimeErrorCode.TASK_NOT_STARTED);
    if (!started) record.steps_charged = 0;
    record.reason = err instanceof EnclaveError ? err.code : "GUEST_TASK_FAILED";
    if (reserved?.id) await deps.ledger.settle(reserved.id, record.steps_charged);
    log.warn({ code: record.reason, steps_charged: record.steps_charged }, "isolated round failed");
    throw err instanceof GuestReportedError
      ? new RuntimeError(
          err.code,
          `the guest's round task failed (${err.code}); its message stays in the guest`,
        )
      : err;
  } finally {
    if (started) await isolated.record?.(task, record);
  }
}

const MAX_PART_BASE64 = 48 * 1024 * 1024;

function replyOf(reply: unknown): RoundTaskReply {
  const r = reply as Partial<RoundTaskReply> | null;
  const b64 = (x: unknown) => typeof x === "string" && x.length <= MAX_PART_BASE64;
  if (
    typeof r !== "object" ||
    r === null ||
    typeof r.outcome !== "string" ||
    r.outcome.length > 1 << 20 ||
    typeof r.parts !== "object" ||
    r.parts === null ||
    !Object.values(r.parts).every(b64) ||
    (r.clientControl !== undefined && !b64(r.clientControl))
  )
    throw new RuntimeError(
      RuntimeErrorCode.CHANNEL_PROTOCOL,
      "round reply: outcome or parts missing or too large",
    );
  return r as RoundTaskReply;
}

/**
 * This side's Airlock over the guest's reply: the outcome's contract (status, counts, whitelisted
 * finite metrics), tensors exactly the global model's (and SCAFFOLD's control tensors too), steps
 * within the reservation, examples the dataset's rows. Epsilon and delta are the host ledger's, and
 * the status follows from the steps taken, never from what the guest said.
 */
async function admitRound(
  host: IsolatedRoundHost,
  task: TrainTask,
  data: SentryExamples,
  reply: unknown,
  reserved: number,
  streams: RoundStreams<SeededRandom> | null,
  log: Logger,
): Promise<TaskOutcome> {
  const r = replyOf(reply);
  const parts: Parts = new Map(Object.entries(r.parts).map(([k, v]) => [k, decodeTensors(v)]));
  const guestOut = decodeOutcome(host.deps.service.nodeId, r.outcome, parts);
  const airlock = new Airlock(task.global);
  const out = airlock.sanitize({ tensors: guestOut.weights, metrics: guestOut.metrics });
  const delta = guestOut.controlDelta && airlock.sanitize({ tensors: guestOut.controlDelta });
  const ci =
    r.clientControl !== undefined ? airlock.sanitize({ tensors: decodeTensors(r.clientControl) }) : null;
  const dropped = out.dropped.length + (delta?.dropped.length ?? 0) + (ci?.dropped.length ?? 0);
  host.countDrops(
    dropped,
    [...out.dropped].map((d) => `${d.key}: ${d.reason}`),
    log,
  );
  if (!airlock.isComplete(out) || (delta && !airlock.isComplete(delta)) || (ci && !airlock.isComplete(ci)))
    throw incompleteUpdate(dropped);
  const { stepsPerEpoch } = poissonSchedule(data.rows, task.plan.batchSize);
  const planned = task.plan.epochs * stepsPerEpoch;
  const limit = task.job.privacy.mechanism === "DP_FEDAVG" ? planned : reserved;
  const steps = out.metrics.steps;
  if (steps === undefined || !Number.isInteger(steps) || steps < 0 || steps > limit)
    throw new EnclaveError(
      "RESERVATION_EXCEEDED",
      `the guest reported steps outside [0, ${limit}] (the reserved steps)`,
    );
  if (guestOut.numExamples !== data.rows || out.metrics.examples !== data.rows)
    throw new EnclaveError("AIRLOCK_INCOMPLETE_UPDATE", "the guest's examples are not the dataset's rows");
  if (streams && r.streams) {
    streams.noise.seek(r.streams.noise);
    streams.sampling.seek(r.streams.sampling);
    streams.init.seek(r.streams.init);
  }
  if (ci) host.rememberControl(task, ci.tensors);
  const metrics = { ...out.metrics };
  const dp = task.job.privacy.mechanism !== "DP_FEDAVG";
  if (dp) {
    const ledger = await host.guardFor(task, data).init();
    metrics.epsilon = ledger.spentEpsilon();
    metrics.delta = ledger.delta;
  } else {
    delete metrics.epsilon;
    metrics.delta = task.job.privacy.delta;
  }
  host.deps.service.count("train_steps", steps);
  log.info(
    { steps, examples: data.rows, epsilon: metrics.epsilon, loss: metrics.loss },
    "isolated round admitted",
  );
  return {
    clientId: host.deps.service.nodeId,
    status: dp && steps < planned ? "budget_exhausted" : "ok",
    weights: out.tensors,
    ...(delta ? { controlDelta: delta.tensors } : {}),
    numExamples: data.rows,
    metrics,
    dropped: guestOut.dropped + dropped,
  };
}
