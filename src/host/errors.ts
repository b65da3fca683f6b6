import { EnclaveError } from "../errors.js";

/** Codes of the host API's own errors. */
export type HostErrorCode =
  /** The host API could not listen on its address. */
  | "HOST_API_BIND_FAILED"
  /** No job with that id. */
  | "JOB_NOT_FOUND"
  /** A job with that id exists already. */
  | "JOB_EXISTS";

export class HostError extends EnclaveError<HostErrorCode> {}
