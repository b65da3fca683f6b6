import { EnclaveError } from "../errors.js";
import type { EvidenceKind } from "./types.js";

/** Codes of the attestation module's errors. Callers branch on these, never on message text. */
export type AttestationErrorCode =
  /** The bytes are no kind of evidence this verifier knows (and no --kind was given). */
  | "EVIDENCE_UNRECOGNISED"
  /** Evidence bytes do not parse: wrong size, version, reserved bytes set, bad encoding. */
  | "EVIDENCE_MALFORMED"
  /** A certificate, PEM block or DER structure does not parse. */
  | "CERTIFICATE_MALFORMED"
  /** A vendor root or key compiled into the code does not match its pinned fingerprint. */
  | "PINNED_ROOT_MISMATCH"
  /** A verification step could not be carried out (named by the error's `check`). */
  | "ATTESTATION_FAILED"
  /** The nonce or node key given for a report-data binding has the wrong size. */
  | "BINDING_INVALID"
  /** The nonce issuer was configured wrongly (TTL, random source). */
  | "NONCE_CONFIG"
  /** A nonce this issuer never issued (or one already forgotten after expiry). */
  | "NONCE_UNKNOWN"
  /** A nonce past its time to live. */
  | "NONCE_EXPIRED"
  /** Too many nonces outstanding: the issuer refuses to hold more. */
  | "NONCE_CAPACITY"
  /** A nonce already redeemed once: the evidence is a replay. */
  | "NONCE_REUSED"
  /** A trust policy file could not be read. */
  | "POLICY_UNREADABLE"
  /** The build measurement could not be computed. */
  | "BUILD_MEASUREMENT_FAILED"
  /** No TEE on this machine (and neither --simulation nor --insecure was given). */
  | "NO_TEE"
  /** A TEE exists but this build cannot drive it. */
  | "TEE_UNSUPPORTED"
  /** The evidence interface exists but cannot be driven from Node. */
  | "PROVIDER_UNSUPPORTED"
  /** The kernel, device or runtime refused to produce evidence. */
  | "PROVIDER_FAILED"
  /** A concurrent writer changed the configfs-tsm entry. */
  | "TSM_CONFLICT"
  /** The collected evidence does not carry the report data that was asked for. */
  | "REPORT_DATA_MISMATCH";

/** Thrown by parsers on malformed evidence (wrong size, version, reserved bytes set). */
export class EvidenceFormatError extends EnclaveError<AttestationErrorCode> {
  constructor(kind: EvidenceKind, message: string) {
    super("EVIDENCE_MALFORMED", `${kind} evidence: ${message}`);
  }
}

/** Thrown when verification cannot proceed or a mandatory check fails; names the check. */
export class AttestationError extends EnclaveError<AttestationErrorCode> {
  readonly check: string;
  constructor(check: string, message: string, code: AttestationErrorCode = "ATTESTATION_FAILED") {
    super(code, `${check}: ${message}`);
    this.check = check;
  }
}
