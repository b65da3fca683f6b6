import { EnclaveError } from "../errors.js";

/** Codes of the federation protocol's own errors (transports and their messages). */
export type ProtocolErrorCode =
  /** The worker thread behind a WorkerAgent crashed or exited with calls in flight. */
  | "AGENT_WORKER_CRASHED"
  | "AGENT_WORKER_EXITED"
  /** The compiled worker entry is missing (run `npm run build`). */
  | "WORKER_ENTRY_MISSING"
  /** The agent failed with an error that is not an EnclaveError (no detail crosses the boundary). */
  | "AGENT_INTERNAL"
  /** A message on an agent channel did not have the protocol's shape. */
  | "AGENT_MESSAGE_INVALID"
  /** A model transfer out of order, over its size limit or of another transfer. */
  | "TRANSFER_INVALID"
  /** A model transfer whose bytes do not have the SHA-256 its last chunk names. */
  | "TRANSFER_HASH_MISMATCH";

export class ProtocolError extends EnclaveError<ProtocolErrorCode> {}
