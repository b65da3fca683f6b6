import { EnclaveError } from "../errors.js";

/** Codes of the audit ledger's own errors. */
export type AuditErrorCode =
  /** A payload that its kind's schema refuses (a field that is not an id, hash, number or enum). */
  | "AUDIT_PAYLOAD_INVALID"
  /** The database refused an append (the chain moved under us, or a guard fired). */
  | "AUDIT_APPEND_REFUSED"
  /** An exported chain file that cannot be read as one entry per line. */
  | "AUDIT_FILE_INVALID"
  /** The signing key is not the key the chain was opened with. */
  | "AUDIT_SIGNER_CHANGED";

export class AuditError extends EnclaveError<AuditErrorCode> {}
