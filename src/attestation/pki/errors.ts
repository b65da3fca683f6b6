import { EnclaveError } from "../../errors.js";
import type { AttestationErrorCode } from "../errors.js";

/** A certificate, PEM block or DER structure could not be parsed; the message names the structure. */
export class CertificateFormatError extends EnclaveError<AttestationErrorCode> {
  constructor(message: string) {
    super("CERTIFICATE_MALFORMED", message);
  }
}

/**
 * A vendor root or key compiled into the code does not match its pinned SHA-256 fingerprint: the
 * build is corrupt, and nothing may be verified against it. One code for every vendor.
 */
export class PinnedRootError extends EnclaveError<AttestationErrorCode> {
  constructor(name: string) {
    super("PINNED_ROOT_MISMATCH", `embedded ${name} does not match its pinned fingerprint`);
  }
}
