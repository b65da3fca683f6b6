import type { CheckResult } from "./checks.js";
import type { SgxClaims, TdxClaims } from "./dcap/verify.js";
import type { NitroClaims } from "./nitro/verify.js";
import type { NvidiaClaims } from "./nvidia/verify.js";
import type { SoftwareClaims } from "./simulated-evidence.js";
import type { SnpClaims } from "./snp/verify.js";

/** Kinds of attestation evidence we can verify. */
export type EvidenceKind = "snp" | "tdx" | "sgx" | "nitro" | "nvidia" | "simulated" | "insecure";

export type { CheckResult, CheckStatus } from "./checks.js";
export { AttestationError, EvidenceFormatError, type AttestationErrorCode } from "./errors.js";
export type { SnpClaims, TdxClaims, SgxClaims, NitroClaims, NvidiaClaims, SoftwareClaims };

/**
 * What a kind's verifier established about one piece of evidence: it authenticated the bytes
 * (format, signature, certificate chain, collateral) and read their claims, typed per kind. It
 * judged nothing against a trust policy: that is the validator's job (`policy/validate.ts`).
 * `trusted` is the one rule (`allPassed`) over `checks`.
 */
export interface Verification<K extends EvidenceKind, C> {
  kind: K;
  trusted: boolean;
  checks: CheckResult[];
  /** The evidence's fields as read after authentication; JSON-serialisable (bytes as hex). */
  claims: C;
  /** Hex launch measurement (SNP MEASUREMENT, TDX MRTD, SGX MRENCLAVE, Nitro PCR0, GPU fw digest). */
  measurement: string;
  /** The report-data / user-data / nonce field that binds freshness and the node key, if any. */
  reportData?: Uint8Array;
  /** True when the hardware reports a debuggable guest/enclave. */
  debug: boolean;
  /** Hex of the evidence's signature (the specification's `enclave_signature`), when it has one. */
  signature?: string;
}

export type SnpVerification = Verification<"snp", SnpClaims>;
export type TdxVerification = Verification<"tdx", TdxClaims>;
export type SgxVerification = Verification<"sgx", SgxClaims>;
export type NitroVerification = Verification<"nitro", NitroClaims>;
export type NvidiaVerification = Verification<"nvidia", NvidiaClaims>;
export type SoftwareVerification = Verification<"simulated" | "insecure", SoftwareClaims>;

/**
 * The outcome of verifying one piece of evidence, discriminated by `kind` so its claims are typed.
 * An appraisal's result has the same shape, with the policy's checks after the verifier's.
 */
export type VerificationResult =
  | SnpVerification
  | TdxVerification
  | SgxVerification
  | NitroVerification
  | NvidiaVerification
  | SoftwareVerification;

/** The claims of any kind. */
export type Claims = VerificationResult["claims"];
