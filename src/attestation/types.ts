import { EnclaveError } from "../errors.js";
import type { CheckResult } from "./checks.js";

/** Kinds of attestation evidence we can verify. */
export type EvidenceKind = "snp" | "tdx" | "sgx" | "nitro" | "nvidia" | "simulated" | "insecure";

export type { CheckResult, CheckStatus } from "./checks.js";

/**
 * The outcome of verifying one piece of evidence. `trusted` is true only when every
 * check that ran passed (skipped checks are listed and explained, never silently passed).
 */
export interface VerificationResult {
  kind: EvidenceKind;
  trusted: boolean;
  checks: CheckResult[];
  /** Parsed, typed claims (measurement, TCB, debug flag, report data, ...), JSON-serialisable. */
  claims: Record<string, unknown>;
  /** Hex launch measurement (SNP MEASUREMENT, TDX MRTD, SGX MRENCLAVE, Nitro PCR0, GPU fw digest). */
  measurement: string;
  /** The report-data / user-data / nonce field that binds freshness and the node key, if any. */
  reportData?: Uint8Array;
  /** True when the hardware reports a debuggable guest/enclave. */
  debug: boolean;
}

/** Thrown by parsers on malformed evidence (wrong size, version, reserved bytes set). */
export class EvidenceFormatError extends EnclaveError {
  constructor(kind: EvidenceKind, message: string) {
    super("EVIDENCE_MALFORMED", `${kind} evidence: ${message}`);
  }
}

/** Thrown when verification cannot proceed or a mandatory check fails; names the check. */
export class AttestationError extends EnclaveError {
  readonly check: string;
  constructor(check: string, message: string, code = "ATTESTATION_FAILED") {
    super(code, `${check}: ${message}`);
    this.check = check;
  }
}
