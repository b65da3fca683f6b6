// Remote attestation: collect evidence in a TEE, verify it anywhere, appraise it against a trust policy.
export {
  AttestationError,
  EvidenceFormatError,
  type AttestationErrorCode,
  type CheckResult,
  type CheckStatus,
  type EvidenceKind,
  type Verification,
  type VerificationResult,
  type Claims,
  type SnpClaims,
  type TdxClaims,
  type SgxClaims,
  type NitroClaims,
  type NvidiaClaims,
  type SoftwareClaims,
} from "./types.js";
export { CheckList, allPassed } from "./checks.js";
export {
  HARDWARE_TYPE,
  HARDWARE_KINDS,
  isHardwareKind,
  type Evidence,
  type EvidenceLabel,
  type EvidenceCertificate,
  type CertificateRole,
} from "./evidence.js";
export { NonceIssuer, NONCE_BYTES, type IssuedNonce, type NonceIssuerOptions } from "./nonce.js";
export {
  bindReportData,
  reportDataMatches,
  BINDING_DOMAIN,
  BINDING_FIELD,
  REPORT_DATA_BYTES,
} from "./binding.js";
export { appraiseEvidence, type Appraisal, type AppraiseOptions, type UnreadEvidence } from "./appraise.js";
export { validateEvidence, type ValidateOptions } from "./policy/validate.js";
export { VERIFIERS, type KindVerifier, type VerifyContext } from "./registry.js";
export {
  guessEvidenceKind,
  detectEvidenceKind,
  decodeEvidenceText,
  type KindGuess,
} from "./evidence-kind.js";
export {
  detectCapabilities,
  type Capabilities,
  type TeeCapability,
  type TeeInterface,
  type DetectOptions,
  type CommandRunner,
} from "./capabilities.js";
export { selectProvider, NoTeeError, type Selection, type SelectOptions } from "./select-provider.js";
export { ProviderError, type EvidenceProvider } from "./providers/provider.js";
export {
  ConfigfsTsmProvider,
  DEFAULT_TSM_REPORT_ROOT,
  type ConfigfsTsmOptions,
  type TsmFs,
} from "./providers/configfs-tsm.js";
export { GramineSgxProvider, DEFAULT_GRAMINE_ROOT } from "./providers/gramine-sgx.js";
export { SimulatedProvider, InsecureProvider, type SoftwareProviderOptions } from "./providers/software.js";
export { UnsupportedInterfaceProvider, UNSUPPORTED_INTERFACES } from "./providers/unsupported.js";
export { parseSnpCertTable, encodeSnpCertTable, SNP_CERT_GUIDS } from "./providers/snp-cert-table.js";
export {
  verifySoftwareEvidence,
  parseSoftwareEvidence,
  encodeSoftwareEvidence,
  SIMULATED_EVIDENCE_BYTES,
} from "./simulated-evidence.js";
export { measureBuild, type BuildMeasurement } from "./build-measurement.js";
export {
  loadTrustPolicy,
  parseTrustPolicy,
  parseTrustPolicyText,
  defaultTrustPolicy,
} from "./policy/load.js";
export { verifySnpReport } from "./snp/index.js";
export { verifyTdxQuote, verifySgxQuote } from "./dcap/index.js";
export { verifyNitroDocument } from "./nitro/index.js";
export { verifyNvidiaGpuEvidence } from "./nvidia/index.js";
