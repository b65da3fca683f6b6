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
  | "TRANSFER_HASH_MISMATCH"
  /** A network agent's session ended (or was replaced) with calls in flight. */
  | "AGENT_DISCONNECTED"
  /** A call to a network agent that holds no session now. */
  | "AGENT_NOT_CONNECTED"
  /** A network agent did not answer before the call's deadline (the round's, for a run). */
  | "AGENT_DEADLINE"
  /** A task or outcome on the wire did not have its contract's shape (the message names the field). */
  | "TASK_INVALID"
  /** A session message out of protocol order (Hello first, node id of the certificate, ...). */
  | "SESSION_INVALID";

/**
 * Codes that mean the agent left the round, not that it misbehaved: a disconnect, a missed
 * deadline. The coordinator invites such an agent again at the next round (it may have restarted).
 */
export const DROPOUT_CODES: ReadonlySet<string> = new Set<ProtocolErrorCode>([
  "AGENT_DISCONNECTED",
  "AGENT_NOT_CONNECTED",
  "AGENT_DEADLINE",
]);

export class ProtocolError extends EnclaveError<ProtocolErrorCode> {}
