import { EnclaveError } from "../errors.js";

/** Codes of the coordinator's own errors. */
export type CoordinatorErrorCode =
  /** An agent presented a node key other than the one pinned at its first trusted admission. */
  | "NODE_KEY_CHANGED"
  /** Over a session, the evidence names a key other than the agent's TLS client key. */
  | "EVIDENCE_KEY_MISMATCH"
  /** The job's privacy mechanism and the strategy the coordinator was given do not match. */
  | "PRIVACY_MECHANISM_MISMATCH"
  /** A seeded random source where the OS CSPRNG is required (client sampling). */
  | "INSECURE_RANDOM"
  /** A stored checkpoint that does not verify (its SHA-256, or the job's recorded rounds). */
  | "CHECKPOINT_INVALID"
  /** A round recorded twice for one job (each round is released exactly once). */
  | "ROUND_RECORDED_TWICE";

export class CoordinatorError extends EnclaveError<CoordinatorErrorCode> {}
