// AMD SEV-SNP attestation: report parsing and verification against AMD's pinned roots.
export {
  parseSnpReport,
  inferProduct,
  productFromCpuid,
  decodeTcb,
  SNP_REPORT_SIZE,
  SNP_SIGNED_SIZE,
  SNP_SUPPORTED_VERSIONS,
  type SnpReport,
  type SnpTcb,
  type SnpGuestPolicy,
  type SnpPlatformInfo,
  type SnpSignerInfo,
  type SnpSigningKey,
  type SnpVersionTriple,
  type TcbLayout,
  type ParseSnpReportOptions,
} from "./report.js";
export { parseVekExtensions, KDS_OID, type VekExtensions } from "./vek-extensions.js";
export {
  verifySnpReport,
  verifySnpReportWithoutVek,
  snpClaims,
  type VerifySnpOptions,
  type SnpClaims,
  type SnpVekClaims,
  type SnpCertificates,
} from "./verify.js";
export {
  AMD_ROOT_KEYS,
  AMD_SIGNING_KEYS,
  type AmdProduct,
  type AmdRootKey,
  type AmdSigningKey,
} from "./amd-roots.js";
