import { EnclaveError } from "../errors.js";

/** Codes of the agent's own errors. */
export type AgentErrorCode =
  /** This node's own attestation is not TRUSTED: it refuses to train. */
  | "ATTESTATION_NOT_TRUSTED"
  /** A DP_FEDAVG task reached an agent whose owner has not accepted client-level DP. */
  | "CLIENT_LEVEL_DP_NOT_ACCEPTED"
  /** The task's model does not fit the local dataset or the job. */
  | "MODEL_DATA_MISMATCH"
  /** The Airlock dropped part of the update: nothing incomplete is sent. */
  | "AIRLOCK_INCOMPLETE_UPDATE"
  /** The agent config file cannot be read (or is too large). */
  | "CONFIG_UNREADABLE"
  /** `--simulation` and `--insecure` together. */
  | "MODE_CONFLICT"
  /** A round under `--isolation microvm|process` whose dataset cannot enter the guest (an image folder). */
  | "ISOLATION_UNSUPPORTED";

export class AgentError extends EnclaveError<AgentErrorCode> {}

export class AttestationRefusedError extends AgentError {
  constructor(status: string) {
    super("ATTESTATION_NOT_TRUSTED", `refusing to train: this node's attestation status is ${status}`);
  }
}

/** A DP_FEDAVG task reached an agent whose owner has not accepted client-level DP. */
export class ClientLevelDpRefusedError extends AgentError {
  constructor() {
    super(
      "CLIENT_LEVEL_DP_NOT_ACCEPTED",
      "refusing a DP_FEDAVG task: its update would leave this agent without local noise, and this agent does not accept client-level DP (acceptClientLevelDp)",
    );
  }
}
