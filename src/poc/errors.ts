import { EnclaveError } from "../errors.js";

/** Codes of `enclave poc`'s own errors. */
export type PocErrorCode =
  /** The POC's port is taken on 127.0.0.1. */
  | "POC_PORT_IN_USE"
  /** The workspace already holds a POC project (its CA, kits and ledgers). */
  | "POC_WORKSPACE_IN_USE"
  /** A child kept dying: restarted as often as the cap allows, it is given up. */
  | "POC_CHILD_FAILED"
  /** The coordinator or the agents did not come up in time. */
  | "POC_START_TIMEOUT"
  /** Stopped by SIGINT or SIGTERM before the job ended. */
  | "POC_INTERRUPTED";

export class PocError extends EnclaveError<PocErrorCode> {}
