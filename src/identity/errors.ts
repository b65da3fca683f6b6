import { EnclaveError } from "../errors.js";

/** Codes of the identity module's own errors (certificates, roles). */
export type IdentityErrorCode =
  /** A participant name or role that a certificate cannot carry. */
  | "IDENTITY_INVALID"
  /** A peer certificate without a usable participant name or role. */
  | "PEER_IDENTITY_MISSING";

export class IdentityError extends EnclaveError<IdentityErrorCode> {}
