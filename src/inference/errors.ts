import { EnclaveError, type WireError } from "../errors.js";

/**
 * Stable codes of the confidential-inference path. A server sends `{code, message}` in its error
 * responses and the client rebuilds the same typed error, so callers branch on `code` on either
 * side of the socket. Messages name commands, fields and sizes, never a sealed or opened value.
 */
export const InferenceErrorCode = {
  /** A frame announced more bytes than the receiver accepts. */
  FRAME_TOO_LARGE: "FRAME_TOO_LARGE",
  /** The peer closed the connection in the middle of a frame. */
  FRAME_TRUNCATED: "FRAME_TRUNCATED",
  /** A frame's payload is not the JSON message the protocol defines. */
  MESSAGE_INVALID: "MESSAGE_INVALID",
  UNKNOWN_COMMAND: "UNKNOWN_COMMAND",
  /** A sealed payload did not open: tampered, sealed to another key, or for another context. */
  DECRYPTION_FAILED: "DECRYPTION_FAILED",
  /** The opened plaintext is not what the command takes (e.g. rows outside the model's schema). */
  PAYLOAD_INVALID: "PAYLOAD_INVALID",
  NO_CREDENTIALS: "NO_CREDENTIALS",
  CREDENTIALS_EXPIRED: "CREDENTIALS_EXPIRED",
  UPSTREAM_FAILED: "UPSTREAM_FAILED",
  /** The enclave's evidence failed the client's trust policy (including simulated evidence). */
  EVIDENCE_UNTRUSTED: "EVIDENCE_UNTRUSTED",
  /** The served key is not the key bound into the evidence (a man in the middle). */
  KEY_MISMATCH: "KEY_MISMATCH",
  CONNECTION_REFUSED: "CONNECTION_REFUSED",
  CONNECTION_CLOSED: "CONNECTION_CLOSED",
  TIMEOUT: "TIMEOUT",
  ENDPOINT_INVALID: "ENDPOINT_INVALID",
  TRANSPORT_UNAVAILABLE: "TRANSPORT_UNAVAILABLE",
  /** Anything the server did not expect; the detail stays in the server's own log. */
  INTERNAL: "INTERNAL",
} as const;
export type InferenceErrorCode = (typeof InferenceErrorCode)[keyof typeof InferenceErrorCode];

const KNOWN = new Set<string>(Object.values(InferenceErrorCode));

export class InferenceError extends EnclaveError {
  declare readonly code: InferenceErrorCode;
  constructor(code: InferenceErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }

  /** What crosses the wire: the class, the code and the (data-free) message. */
  override toWire(): WireError & { code: InferenceErrorCode } {
    return { name: this.name, code: this.code, message: this.message };
  }

  /** Rebuild a peer's error; an unknown code becomes INTERNAL rather than an unchecked string. */
  static override fromWire(input: unknown): InferenceError {
    const wire = (typeof input === "object" && input !== null ? input : {}) as {
      code?: unknown;
      message?: unknown;
    };
    const code = typeof wire.code === "string" && KNOWN.has(wire.code) ? wire.code : "INTERNAL";
    const message =
      typeof wire.message === "string" ? wire.message.slice(0, 1000) : "error without a message";
    return new InferenceError(code as InferenceErrorCode, message);
  }
}
