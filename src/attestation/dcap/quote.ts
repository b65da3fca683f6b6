import { EvidenceFormatError, type EvidenceKind } from "../types.js";
import { ByteReader } from "./byte-reader.js";
import { decodePemCertificateChain } from "./pem-chain.js";
import {
  ENCLAVE_REPORT_SIZE,
  parseEnclaveReport,
  parseTdReport,
  TD_REPORT_10_SIZE,
  TD_REPORT_15_SIZE,
  type EnclaveReport,
  type TdReport,
} from "./report-body.js";

/*
 * Intel DCAP ECDSA quotes, as laid out in "Intel SGX ECDSA Quote Library Reference" (quote v3)
 * and "Intel TDX DCAP Quoting Library API" (quote v4 and v5). All integers are little-endian.
 *
 *   v3 (SGX): header(48) | enclave report(384)            | u32 sig_size | sig data v3
 *   v4 (TDX): header(48) | TD report 1.0(584)             | u32 sig_size | sig data v4
 *   v5 (TDX): header(48) | u16 type | u32 size | body     | u32 sig_size | sig data v4
 *
 * The attestation key signs everything before sig_size. Signature data v4 wraps the QE report in
 * certification data type 6, which nests the PCK chain as certification data type 5.
 */

export const QUOTE_HEADER_SIZE = 48;
export const ATTESTATION_KEY_TYPE_ECDSA_P256 = 2;
export const TEE_TYPE_SGX = 0x00;
export const TEE_TYPE_TDX = 0x81;
export const CERT_DATA_PCK_CHAIN = 5;
export const CERT_DATA_QE_REPORT = 6;
/** QE_VENDOR_ID of Intel's quoting enclaves. */
export const INTEL_QE_VENDOR_ID = "939a7233f79c4ca9940a0db3957f0607";

/**
 * Upper bound on accepted input. Real quotes are about 5 KB; zero-padded quote buffers from
 * drivers and cloud APIs stay within a few pages. Anything larger is refused before parsing.
 */
export const MAX_QUOTE_BYTES = 64 * 1024;

/** v5 body descriptor types (TDX DCAP Quoting Library API, quote format v5). */
const BODY_TYPE_TD_REPORT_10 = 2;
const BODY_TYPE_TD_REPORT_15 = 3;

export interface QuoteHeader {
  raw: Uint8Array;
  version: number;
  attestationKeyType: number;
  teeType: number;
  /** Bytes 8..9: QE SVN in v3 headers, reserved in v4/v5. */
  qeSvn: number;
  /** Bytes 10..11: PCE SVN in v3 headers, reserved in v4/v5. */
  pceSvn: number;
  qeVendorId: Uint8Array;
  userData: Uint8Array;
}

/** The parts of an ECDSA quote that every DCAP verification step uses. */
export interface DcapQuote<Body> {
  header: QuoteHeader;
  /** v5 body descriptor type (2 = TD 1.0, 3 = TD 1.5); undefined for v3/v4. */
  bodyType?: number;
  body: Body;
  /** Header (and v5 body descriptor) and body: the bytes the attestation key signs. */
  signedRegion: Uint8Array;
  /** ECDSA P-256 signature r||s over `signedRegion`. */
  signature: Uint8Array;
  /** Attestation public key X||Y (64 bytes). */
  attestationKey: Uint8Array;
  qeReport: EnclaveReport;
  /** ECDSA P-256 signature r||s over the QE report, by the PCK key. */
  qeReportSignature: Uint8Array;
  qeAuthData: Uint8Array;
  /** PCK certificate chain as DER, leaf first. */
  pckChain: Uint8Array[];
  /** Number of bytes after the quote (fixed-size quote buffers are zero-padded). */
  paddingLength: number;
  /** Some of those bytes are not zero (at most MAX_TRAILING_BYTES then): reported, never read. */
  trailingNonZero: boolean;
}

export type TdxQuote = DcapQuote<TdReport>;
export type SgxQuote = DcapQuote<EnclaveReport>;

/** Parse an Intel TDX quote (v4 or v5). Throws EvidenceFormatError naming the offending field. */
export function parseTdxQuote(bytes: Uint8Array): TdxQuote {
  checkInput(bytes, "tdx");
  const r = new ByteReader(bytes, "tdx");
  const header = parseHeader(r, "tdx");
  if (header.version !== 4 && header.version !== 5) {
    throw new EvidenceFormatError(
      "tdx",
      `header.version: ${header.version} is not supported (expected 4 or 5)`,
    );
  }
  if (header.teeType !== TEE_TYPE_TDX) {
    throw new EvidenceFormatError(
      "tdx",
      `header.tee_type: 0x${header.teeType.toString(16)} is not TDX (0x81)`,
    );
  }
  let body: TdReport;
  let bodyType: number | undefined;
  if (header.version === 4) {
    body = parseTdReport(r.take(TD_REPORT_10_SIZE, "td_report10"), "1.0", QUOTE_HEADER_SIZE);
  } else {
    bodyType = r.u16("body.type");
    const size = r.u32("body.size");
    const expected =
      bodyType === BODY_TYPE_TD_REPORT_10
        ? TD_REPORT_10_SIZE
        : bodyType === BODY_TYPE_TD_REPORT_15
          ? TD_REPORT_15_SIZE
          : undefined;
    if (expected === undefined) {
      throw new EvidenceFormatError("tdx", `body.type: ${bodyType} is not a TD report (expected 2 or 3)`);
    }
    if (size !== expected) {
      throw new EvidenceFormatError(
        "tdx",
        `body.size: ${size} does not match body type ${bodyType} (${expected})`,
      );
    }
    const base = r.offset;
    body = parseTdReport(r.take(size, "body"), bodyType === BODY_TYPE_TD_REPORT_10 ? "1.0" : "1.5", base);
  }
  const signedRegion = bytes.subarray(0, r.offset);
  const sig = parseSignatureDataV4(r, "tdx");
  return { header, bodyType, body, signedRegion, ...sig, ...trailingBytes(r, "tdx") };
}

/** Parse an Intel SGX ECDSA quote (v3). Throws EvidenceFormatError naming the offending field. */
export function parseSgxQuote(bytes: Uint8Array): SgxQuote {
  checkInput(bytes, "sgx");
  const r = new ByteReader(bytes, "sgx");
  const header = parseHeader(r, "sgx");
  if (header.version !== 3) {
    throw new EvidenceFormatError("sgx", `header.version: ${header.version} is not supported (expected 3)`);
  }
  if (header.teeType !== TEE_TYPE_SGX) {
    throw new EvidenceFormatError(
      "sgx",
      `header.tee_type: 0x${header.teeType.toString(16)} is not SGX (0x00)`,
    );
  }
  const body = parseEnclaveReport(
    r.take(ENCLAVE_REPORT_SIZE, "isv_report"),
    "sgx",
    QUOTE_HEADER_SIZE,
    "isv_report",
  );
  const signedRegion = bytes.subarray(0, r.offset);
  const sig = parseSignatureDataV3(r);
  return { header, body, signedRegion, ...sig, ...trailingBytes(r, "sgx") };
}

function checkInput(bytes: Uint8Array, kind: EvidenceKind): void {
  if (!(bytes instanceof Uint8Array)) throw new EvidenceFormatError(kind, "quote: expected bytes");
  if (bytes.length > MAX_QUOTE_BYTES) {
    throw new EvidenceFormatError(
      kind,
      `quote: ${bytes.length} bytes exceeds the ${MAX_QUOTE_BYTES}-byte limit`,
    );
  }
}

function parseHeader(r: ByteReader, kind: EvidenceKind): QuoteHeader {
  const raw = r.take(QUOTE_HEADER_SIZE, "header");
  const h = new ByteReader(raw, kind);
  const header: QuoteHeader = {
    raw,
    version: h.u16("header.version"),
    attestationKeyType: h.u16("header.att_key_type"),
    teeType: h.u32("header.tee_type"),
    qeSvn: h.u16("header.qe_svn"),
    pceSvn: h.u16("header.pce_svn"),
    qeVendorId: h.take(16, "header.qe_vendor_id"),
    userData: h.take(20, "header.user_data"),
  };
  if (header.attestationKeyType !== ATTESTATION_KEY_TYPE_ECDSA_P256) {
    throw new EvidenceFormatError(
      kind,
      `header.att_key_type: ${header.attestationKeyType} is not supported (expected 2, ECDSA P-256)`,
    );
  }
  return header;
}

type SignatureParts = Pick<
  DcapQuote<unknown>,
  "signature" | "attestationKey" | "qeReport" | "qeReportSignature" | "qeAuthData" | "pckChain"
>;

/** ECDSA 256-bit quote signature data, v3 layout (SGX ECDSA Quote Library Reference, A.4). */
function parseSignatureDataV3(r: ByteReader): SignatureParts {
  const size = r.u32("signature_data_size");
  const s = r.sub(size, "signature_data");
  const signature = s.take(64, "signature_data.isv_report_signature");
  const attestationKey = s.take(64, "signature_data.attestation_key");
  const qeBase = r.offset - size + s.offset;
  const qeReport = parseEnclaveReport(s.take(ENCLAVE_REPORT_SIZE, "qe_report"), "sgx", qeBase, "qe_report");
  const qeReportSignature = s.take(64, "signature_data.qe_report_signature");
  const qeAuthData = s.take(s.u16("qe_auth_data.size"), "qe_auth_data");
  const pckChain = parsePckChainCertData(s, "sgx", "certification_data");
  s.expectEnd("signature_data");
  return { signature, attestationKey, qeReport, qeReportSignature, qeAuthData, pckChain };
}

/** ECDSA 256-bit quote signature data, v4 layout (TDX DCAP Quoting Library API, A.3.8). */
function parseSignatureDataV4(r: ByteReader, kind: EvidenceKind): SignatureParts {
  const size = r.u32("signature_data_size");
  const start = r.offset;
  const s = r.sub(size, "signature_data");
  const signature = s.take(64, "signature_data.quote_signature");
  const attestationKey = s.take(64, "signature_data.attestation_key");
  const outerType = s.u16("certification_data.type");
  if (outerType !== CERT_DATA_QE_REPORT) {
    throw new EvidenceFormatError(
      kind,
      `certification_data.type: ${outerType} is not supported (expected 6, QE report certification data)`,
    );
  }
  const outerSize = s.u32("certification_data.size");
  const qeBase = start + s.offset;
  const q = s.sub(outerSize, "certification_data");
  const qeReport = parseEnclaveReport(q.take(ENCLAVE_REPORT_SIZE, "qe_report"), kind, qeBase, "qe_report");
  const qeReportSignature = q.take(64, "qe_report_certification_data.qe_report_signature");
  const qeAuthData = q.take(q.u16("qe_auth_data.size"), "qe_auth_data");
  const pckChain = parsePckChainCertData(q, kind, "qe_report_certification_data.certification_data");
  q.expectEnd("certification_data");
  s.expectEnd("signature_data");
  return { signature, attestationKey, qeReport, qeReportSignature, qeAuthData, pckChain };
}

/** Certification data type 5: the PCK leaf, its CA and the root, as PEM. Other types need a PCCS. */
function parsePckChainCertData(r: ByteReader, kind: EvidenceKind, field: string): Uint8Array[] {
  const type = r.u16(`${field}.type`);
  if (type !== CERT_DATA_PCK_CHAIN) {
    throw new EvidenceFormatError(
      kind,
      `${field}.type: ${type} is not supported (expected 5, PCK certificate chain; other types need online lookup)`,
    );
  }
  const size = r.u32(`${field}.size`);
  return decodePemCertificateChain(r.take(size, `${field}.data`), kind, `${field}.data`);
}

/**
 * Unsigned non-zero bytes accepted after a quote. go-tdx-guest's own production sample carries 39
 * ("extra bytes(only for testing purpose)") and go-tdx-guest and dcap-qvl verify it; they are
 * outside what the attestation key signs, so they are never interpreted, only reported.
 */
export const MAX_TRAILING_BYTES = 64;

/**
 * Quote buffers from the driver or a cloud API are often fixed-size and zero-filled after the
 * quote: those zeros are tolerated whatever their length (within MAX_QUOTE_BYTES). Other trailing
 * bytes are tolerated up to MAX_TRAILING_BYTES and flagged; more is refused.
 */
function trailingBytes(
  r: ByteReader,
  kind: EvidenceKind,
): { paddingLength: number; trailingNonZero: boolean } {
  const start = r.offset;
  const rest = r.take(r.remaining, "trailing bytes");
  const trailingNonZero = rest.some((b) => b !== 0);
  if (trailingNonZero && rest.length > MAX_TRAILING_BYTES) {
    throw new EvidenceFormatError(
      kind,
      `trailing bytes: ${rest.length} byte(s) follow the quote at offset ${start}; more than ${MAX_TRAILING_BYTES} that are not zero padding`,
    );
  }
  return { paddingLength: rest.length, trailingNonZero };
}
