import { EnclaveError } from "../errors.js";

/** Codes of the identity module's own errors (certificates, roles). */
export type IdentityErrorCode =
  /** A participant name or role that a certificate cannot carry. */
  | "IDENTITY_INVALID"
  /** A peer certificate without a usable participant name or role. */
  | "PEER_IDENTITY_MISSING"
  /** A startup kit that is incomplete, edited after signing, or not the project CA's. */
  | "KIT_INVALID"
  /** A certificate signing request that cannot be approved. */
  | "CSR_INVALID";

export class IdentityError extends EnclaveError<IdentityErrorCode> {}
