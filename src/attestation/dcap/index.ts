// Intel DCAP quote verification: TDX quotes v4/v5 and SGX ECDSA quotes v3, offline, against Intel collateral.
export {
  verifyTdxQuote,
  verifySgxQuote,
  type DcapVerifyOptions,
  type TdxClaims,
  type SgxClaims,
  type DcapCommonClaims,
  type EnclaveReportClaims,
} from "./verify.js";
export {
  parseTdxQuote,
  parseSgxQuote,
  MAX_QUOTE_BYTES,
  INTEL_QE_VENDOR_ID,
  TEE_TYPE_SGX,
  TEE_TYPE_TDX,
  type DcapQuote,
  type TdxQuote,
  type SgxQuote,
  type QuoteHeader,
} from "./quote.js";
export { type EnclaveReport, type TdReport, SGX_FLAGS_DEBUG, TD_ATTRIBUTES_DEBUG } from "./report-body.js";
export {
  DcapCollateralSchema,
  parseDcapCollateral,
  dcapCollateralFromPcs,
  type DcapCollateral,
} from "./collateral.js";
export {
  parseTcbInfo,
  parseQeIdentity,
  type TcbInfo,
  type TcbLevel,
  type QeIdentity,
} from "./pcs-documents.js";
export {
  evaluatePlatformTcb,
  evaluateQeIdentity,
  checkTdxModuleIdentity,
  TCB_STATUSES,
  type TcbStatus,
  type TcbEvaluation,
} from "./tcb-status.js";
export { parsePckExtensions, SGX_EXTENSION_OID, type PckExtensions } from "./pck-extensions.js";
export { INTEL_SGX_ROOT_CA_PEM, INTEL_SGX_ROOT_CA_SHA256, intelSgxRootCa } from "./intel-root.js";
export { rawJsonMember } from "./raw-json.js";
