import { Executor } from "../../agent/executor.js";
import { AgentService } from "../../agent/agent-service.js";
import { loadTrainingExamples } from "../../agent/training-examples.js";
import { decodeTask, encodeOutcome, type Parts } from "../../federation/task-wire.js";
import { parseSafetensors, serializeSafetensors, weightsHash } from "../../model/safetensors.js";
import { createAccountant, type AccountantName } from "../../privacy/accountant/index.js";
import type { GuardLedger } from "../../privacy/guard.js";
import { ReservedLedger, type StepReservation } from "../../privacy/reserved-ledger.js";
import { CryptoRandom, SeededRandom, type SeededPosition, type SeededState } from "../../random.js";
import { kernels } from "../../tensor/backend.js";
import type { TensorMap } from "../../tensor/tensor.js";
import { RuntimeError, RuntimeErrorCode } from "../errors.js";
import { applyKernelPins, inDataRoot, type KernelPins } from "./train-task.js";

/** The agent's three streams (noise, sampling, init) in one shape: states going in, positions coming out. */
export interface RoundStreams<T> {
  noise: T;
  sampling: T;
  init: T;
}

/** The `round` request: one federated round's task, as the agent's host sends it to its guest. */
export interface RoundTaskArgs {
  nodeId: string;
  /** The task's JSON and tensor parts, as on the network (src/federation/task-wire.ts), parts as safetensors (base64). */
  task: string;
  parts: Record<string, string>;
  /** SCAFFOLD's client control variate c_i the host keeps for this job. */
  clientControl?: string;
  /** The dataset's file name in the guest's data root. */
  dataset: string;
  /** What the host reserved in its ledger; null for a DP_FEDAVG round (no per-example steps). */
  reservation: StepReservation | null;
  /** Seeded runs only (simulations, tests): the host's streams, so the guest draws what the host would. */
  streams: RoundStreams<SeededState> | null;
  accountant: AccountantName;
  acceptClientLevelDp: boolean;
  kernels: KernelPins;
}

/** What the guest sends back: the Airlock's output (outcome JSON and parts) and, seeded, where its streams stopped. */
export interface RoundTaskReply {
  outcome: string;
  parts: Record<string, string>;
  clientControl?: string;
  streams?: RoundStreams<SeededPosition>;
}

export const encodeTensors = (t: TensorMap) => Buffer.from(serializeSafetensors(t)).toString("base64");
export const decodeTensors = (b64: string) => parseSafetensors(Buffer.from(b64, "base64")).tensors;

export function encodeParts(parts: Parts): Record<string, string> {
  return Object.fromEntries([...parts].map(([k, v]) => [k, encodeTensors(v)]));
}

/** The guest has no ledger of its own under DP_FEDAVG: its training takes no guarded step. */
const NO_LEDGER: GuardLedger = {
  adopt: () => Promise.resolve(0),
  state: () => Promise.reject(new RuntimeError(RuntimeErrorCode.GUEST_TASK_FAILED, "no reservation")),
  reserve: () => Promise.reject(new RuntimeError(RuntimeErrorCode.GUEST_TASK_FAILED, "no reservation")),
  settle: () => Promise.resolve(),
};

/**
 * One round in the guest: the same Executor code as an in-process agent (Validate -> Train ->
 * Sanitize), its Data Sentry on the read-only data root, its guard on a ReservedLedger holding exactly
 * the host's reservation. The dataset must be the records the host reserved for. Only the Airlock's
 * output goes back, with the streams' positions of a seeded run (numbers).
 */
export async function runRoundTask(
  args: RoundTaskArgs,
  dataRoot: string,
  emit: (event: string, fields: Record<string, number | string>) => void,
): Promise<RoundTaskReply> {
  applyKernelPins(args.kernels);
  const partMap: Parts = new Map(Object.entries(args.parts ?? {}).map(([k, v]) => [k, decodeTensors(v)]));
  const task = decodeTask(args.task, partMap);
  inDataRoot(dataRoot, args.dataset, "dataset");
  const r = args.reservation;
  const seeded = args.streams && {
    noise: SeededRandom.fromState(args.streams.noise),
    sampling: SeededRandom.fromState(args.streams.sampling),
    init: SeededRandom.fromState(args.streams.init),
  };
  const executor = new Executor({
    service: new AgentService(args.nodeId),
    attest: () => Promise.reject(new RuntimeError(RuntimeErrorCode.GUEST_TASK_FAILED, "the host attests")),
    loadDataset: async () => {
      const data = await loadTrainingExamples(dataRoot, args.dataset);
      if (r && data.identity !== r.datasetId)
        throw new RuntimeError(
          RuntimeErrorCode.GUEST_TASK_FAILED,
          "the guest's dataset is not the records the host reserved for (reservation.datasetId)",
        );
      return data;
    },
    ledger: r ? new ReservedLedger(r) : NO_LEDGER,
    accountantFromHistory: (h) => createAccountant(args.accountant, h),
    kernels: kernels(),
    noise: seeded?.noise ?? new CryptoRandom(),
    sampling: seeded?.sampling ?? new CryptoRandom(),
    init: seeded?.init ?? new CryptoRandom(),
    acceptClientLevelDp: args.acceptClientLevelDp === true,
  });
  if (args.clientControl) executor.rememberControl(task, decodeTensors(args.clientControl));
  emit("task_start", { round: task.round, steps_reserved: r?.steps ?? 0 });
  const out = await executor.train(task);
  emit("task_end", {
    round: task.round,
    steps: out.metrics.steps ?? 0,
    model_sha256: weightsHash(out.weights),
  });
  const { json, parts } = encodeOutcome(out);
  const control = executor.controlOf(task);
  return {
    outcome: json,
    parts: encodeParts(parts),
    ...(control ? { clientControl: encodeTensors(control) } : {}),
    ...(seeded && {
      streams: {
        noise: seeded.noise.position(),
        sampling: seeded.sampling.position(),
        init: seeded.init.position(),
      },
    }),
  };
}
