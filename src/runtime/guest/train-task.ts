import { join } from "node:path";
import { FASHION_MNIST_ENV } from "../../data/fashion-mnist.js";
import { serializeSafetensors, weightsHash } from "../../model/safetensors.js";
import { ReservedLedger, type StepReservation } from "../../privacy/reserved-ledger.js";
import {
  planLocalTraining,
  trainingGuard,
  trainPlanned,
  type LocalTrainingOptions,
} from "../../training/local-training.js";
import { RuntimeError, RuntimeErrorCode } from "../errors.js";

/** The host's pins of the kernel backend (ENCLAVE_KERNELS, ENCLAVE_KERNELS_CPU, ENCLAVE_THREADS). */
export type KernelPins = Partial<
  Record<"ENCLAVE_KERNELS" | "ENCLAVE_KERNELS_CPU" | "ENCLAVE_THREADS", string>
>;

/** The `train` request: the run's options with file names inside the guest's data root. */
export interface TrainTaskArgs {
  options: Omit<LocalTrainingOptions, "onStep" | "workspace">;
  reservation: StepReservation;
  kernels: KernelPins;
}

/** What the guest sends back: the weights as safetensors (base64) and numbers only. */
export interface TrainTaskReply {
  weights: string;
  steps: number;
  accuracy: number;
  loss: number;
  baseline?: { accuracy: number; loss: number };
  stopped: boolean;
  kernels: string;
}

/** The host's kernel pins as the guest must apply them before its first kernel call. */
export function kernelPins(env: NodeJS.ProcessEnv = process.env): KernelPins {
  const pins: KernelPins = {};
  for (const k of ["ENCLAVE_KERNELS", "ENCLAVE_KERNELS_CPU", "ENCLAVE_THREADS"] as const)
    if (env[k]) pins[k] = env[k];
  return pins;
}

/** Apply the host's pins before the first kernel call (the backend is chosen once, at first use). */
export function applyKernelPins(pins: KernelPins | undefined): void {
  for (const [k, v] of Object.entries(pins ?? {}))
    if (k === "ENCLAVE_KERNELS" || k === "ENCLAVE_KERNELS_CPU" || k === "ENCLAVE_THREADS")
      process.env[k] = String(v);
}

const NAME = /^[A-Za-z0-9._-]{1,200}$/;

/** A file the host named by its plain name, inside the guest's data root (CHANNEL_PROTOCOL otherwise). */
export function inDataRoot(dataRoot: string, name: string | undefined, field: string): string | undefined {
  if (name === undefined) return undefined;
  if (typeof name !== "string" || !NAME.test(name) || name.startsWith("."))
    throw new RuntimeError(
      RuntimeErrorCode.CHANNEL_PROTOCOL,
      `train request: ${field} is not a plain file name`,
    );
  return join(dataRoot, name);
}

/**
 * The task inside the guest: the Data Sentry loads the dataset from the read-only data root, the
 * guard runs DP-SGD on a ReservedLedger holding exactly the host's reservation, and only the
 * weights and whitelisted numbers go back. The plan must agree with the host's: the same records
 * (their identity is the ledger key) and the same sample rate and noise the steps were reserved at.
 */
export async function runTrainTask(
  args: TrainTaskArgs,
  dataRoot: string,
  emit: (event: string, fields: Record<string, number | string>) => void,
): Promise<TrainTaskReply> {
  applyKernelPins(args.kernels);
  // The named Fashion-MNIST: its four IDX files are the data root (the loader looks there first).
  const named = args.options.datasetFile === "fashion-mnist";
  if (named) process.env[FASHION_MNIST_ENV] = dataRoot;
  const o: LocalTrainingOptions = {
    ...args.options,
    datasetFile: named ? "fashion-mnist" : inDataRoot(dataRoot, args.options.datasetFile, "datasetFile")!,
    modelSpecFile: inDataRoot(dataRoot, args.options.modelSpecFile, "modelSpecFile"),
    workspace: "",
  };
  const r = args.reservation;
  const ledger = new ReservedLedger(r);
  const plan = await planLocalTraining(o);
  if (plan.datasetKey !== r.datasetId || plan.sampleRate !== r.sampleRate || plan.sigma !== r.noiseMultiplier)
    throw new RuntimeError(
      RuntimeErrorCode.GUEST_TASK_FAILED,
      "the guest's plan differs from the reservation (dataset identity, sample rate or noise multiplier)",
    );
  const guard = await trainingGuard(o, plan, ledger, r.jobId).init();
  emit("task_start", { steps_reserved: r.steps, rows: plan.trainSet.rows });
  const t = await trainPlanned(o, plan, guard);
  const digest = weightsHash(t.weights);
  emit("task_end", { steps: t.steps, model_sha256: digest });
  return {
    weights: Buffer.from(serializeSafetensors(t.weights)).toString("base64"),
    steps: t.steps,
    accuracy: t.accuracy,
    loss: t.loss,
    baseline: t.baseline,
    stopped: t.stoppedBy !== undefined,
    kernels: t.kernels,
  };
}
