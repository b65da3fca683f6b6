import { EnclaveError } from "../errors.js";

/** Codes of the SDK's own errors (a coordinator's refusal keeps the coordinator's code). */
export type SdkErrorCode =
  /** The coordinator could not be reached, or the connection broke and did not come back. */
  | "COORDINATOR_UNAVAILABLE"
  /** A call failed without a code from the coordinator (a transport or protocol failure). */
  | "RPC_FAILED"
  /** The coordinator ended a job's event stream before the job ended. */
  | "JOB_STREAM_ENDED";

export class SdkError extends EnclaveError<SdkErrorCode> {}
