import type { AttestationReport } from "../schemas/attestation.js";
import type { PrivacyMechanism } from "../schemas/privacy.js";
import type { StrategyState } from "../strategies/types.js";
import type { TensorMap } from "../tensor/tensor.js";
import type { ClientState, JobResult, RoundRecord } from "./coordinator.js";

interface Scoped {
  job_id: string;
}
interface InRound extends Scoped {
  round: number;
}
interface ForClient extends InRound {
  client_id: string;
}

/**
 * Everything the coordinator does to a job, in order, as one typed stream: the console, the
 * logs, the job store and the audit ledger all read this. Fields are snake_case JSON-ready data
 * (ids, codes, numbers, hashes) and never a data value; `round_completed.global` is the one
 * exception, the model itself (and the strategy's state) for checkpoints, and is not meant to be
 * serialised.
 *
 * The listener is awaited before the coordinator goes on, so a consumer that persists an event
 * (write-ahead) holds the job back until the event is durable.
 */
export type CoordinatorEvent =
  | (Scoped & {
      type: "job_started";
      clients: string[];
      rounds: number;
      min_clients: number;
      strategy: string;
      mechanism: PrivacyMechanism;
      model_sha256: string;
      /** The job's per-site epsilon target and delta (the ceiling is EPSILON_HARD_CEILING). */
      target_epsilon: number;
      delta: number;
    })
  | (InRound & {
      type: "round_started";
      /** DP_FEDAVG: the clients Poisson-sampled into the round (all able clients otherwise). */
      sampled?: string[];
    })
  | (ForClient & {
      type: "client_attested";
      status: AttestationReport["status"];
      hardware_type: AttestationReport["hardware_type"];
      measurement_hash: string;
      /** TCB values, Intel's TCB status and the first failed check's name (appraisalFacts). */
      tcb?: string;
      tcb_status?: string;
      failed_check?: string;
    })
  | (ForClient & { type: "client_invited" })
  | (ForClient & {
      type: "client_reported";
      /** Spent epsilon before this round (the budget probe's) and after it. */
      epsilon_before: number;
      epsilon: number;
      examples: number;
      steps: number;
      /** SHA-256 of the update's tensor map (safetensors bytes), as the site's own chain records it. */
      update_sha256: string;
    })
  | (ForClient & {
      type: "client_excluded";
      state: Exclude<ClientState, "active">;
      /** `CODE: message` for an error, or a sentence; never a data value. */
      reason: string;
    })
  | (InRound & {
      type: "round_completed";
      record: RoundRecord;
      model_sha256: string;
      /** The new global model (for checkpoints; not serialisable data). */
      global: TensorMap;
      /** The strategy's cross-round state after this round (for checkpoints, like `global`). */
      strategy?: StrategyState;
    })
  | (Scoped & {
      type: "job_finished";
      /** "failed": the coordinator could not run the job (its reason says why). */
      status: JobResult["status"] | "failed";
      reason?: string;
      rounds_completed: number;
      model_sha256: string;
    });

export type CoordinatorEventType = CoordinatorEvent["type"];

export type CoordinatorEventListener = (event: CoordinatorEvent) => void | Promise<void>;
