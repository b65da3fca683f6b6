import { EnclaveError } from "../../errors.js";

/** A certificate, PEM block or DER structure could not be parsed; the message names the structure. */
export class CertificateFormatError extends EnclaveError {
  constructor(message: string) {
    super("CERTIFICATE_MALFORMED", message);
  }
}
