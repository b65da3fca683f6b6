import { createHash, timingSafeEqual } from "node:crypto";
import { EnclaveError, ValidationError } from "../../errors.js";
import {
  bytesEqual,
  describeChainFailure,
  parseCertificate,
  verifyCertificateChain,
  verifyEcdsaRaw,
  type ParsedCertificate,
} from "../pki/index.js";
import { checkCrlIssuedBy, isRevokedBy } from "../pki/crl.js";
import { CheckList, fail, pass, warn, type Outcome } from "../checks.js";
import type { EvidenceKind, SgxVerification, TdxVerification } from "../types.js";
import { parseDcapCollateral, type DcapCollateral } from "./collateral.js";
import { collateralVerdicts, PINNED_INTEL_ROOT, type CollateralVerdicts } from "./collateral-verdicts.js";
import { parsePckExtensions, type PckExtensions } from "./pck-extensions.js";
import type { QeIdentity, TcbInfo } from "./pcs-documents.js";
import {
  INTEL_QE_VENDOR_ID,
  MAX_TRAILING_BYTES,
  parseSgxQuote,
  parseTdxQuote,
  type DcapQuote,
} from "./quote.js";
import { SGX_FLAGS_DEBUG, TD_ATTRIBUTES_DEBUG, type EnclaveReport, type TdReport } from "./report-body.js";
import {
  checkTdxModuleIdentity,
  evaluatePlatformTcb,
  evaluateQeIdentity,
  type QeIdentityEvaluation,
  type TcbEvaluation,
  type TcbStatus,
} from "./tcb-status.js";

export interface DcapVerifyOptions {
  /** Validation time for certificates, CRLs, TCB info and QE identity. */
  at: Date;
  /**
   * Intel collateral for this platform (see DcapCollateral); validated on entry. Without it every
   * check that needs only the quote still runs, the collateral-dependent checks fail for want of
   * collateral, and the quote is never trusted.
   */
  collateral?: DcapCollateral;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

const PCK_LEAF_CN = "Intel SGX PCK Certificate";
const PCK_CA_CNS = new Set(["Intel SGX PCK Platform CA", "Intel SGX PCK Processor CA"]);

/** Why a quote without collateral is not trusted, whatever its own checks say. */
export const NO_COLLATERAL =
  "no Intel collateral given (--collateral: TCB info, QE identity, CRLs and their issuer chains, as " +
  "Intel PCS serves them); without it the TCB status and revocation cannot be established";
const NEEDS_COLLATERAL = "needs Intel collateral (TCB info, QE identity, CRLs); none was given";
const absent = { ok: false as const, detail: NEEDS_COLLATERAL };
const ABSENT_COLLATERAL: CollateralVerdicts = {
  tcbInfoSigner: absent,
  qeIdentitySigner: absent,
  tcbInfo: absent,
  qeIdentity: absent,
  pckCrlIssuer: absent,
  pckCrl: absent,
  rootCaCrl: absent,
};

interface Context {
  at: Date;
  collateral?: DcapCollateral;
}

/** What the shared DCAP checks learned, for the TEE-specific checks that follow. */
interface DcapState {
  pckPath?: ParsedCertificate[];
  pck?: PckExtensions;
  tcbInfo?: TcbInfo;
  qeIdentity?: QeIdentity;
  qe?: QeIdentityEvaluation;
  tcb?: TcbEvaluation;
  /** TCB info and QE identity signatures both verified: only then is a TCB status derived. */
  collateralSigned?: boolean;
}

/**
 * Authenticate an Intel TDX quote (v4 or v5) against Intel collateral at `options.at`: signatures,
 * PCK chain, CRLs, TCB info, QE identity, TDX module identity, and the platform's TCB status as
 * Intel's signed TCB info gives it. Whether that status, the debug bit or the measurements are
 * acceptable is the validator's call. Malformed quotes throw EvidenceFormatError, malformed options
 * or collateral envelopes throw ValidationError; everything else is reported as named checks, and
 * `trusted` is true only when every check that ran passed.
 */
export function verifyTdxQuote(bytes: Uint8Array, options: DcapVerifyOptions): TdxVerification {
  const ctx = validateOptions(options);
  const quote = parseTdxQuote(bytes);
  const list = new CheckList();
  const body = quote.body;
  const state = verifyDcapCommon("tdx", quote, ctx, list);

  list.run("tdx-module", () => {
    if (!ctx.collateral) return fail(NEEDS_COLLATERAL);
    if (!state.tcbInfo) return fail("needs a parsed TCB info");
    const r = checkTdxModuleIdentity(state.tcbInfo, body);
    return r.ok ? pass(r.detail) : fail(r.reason);
  });
  list.run("tcb-status", () =>
    tcbStatusCheck(state, ctx, () => ({ teeTcbSvn: body.teeTcbSvn, teeTcbSvn2: body.teeTcbSvn2 })),
  );

  const claims: TdxClaims = { ...tdxClaims(quote), ...commonClaims(quote, state, ctx) };
  return {
    kind: "tdx",
    trusted: list.trusted,
    checks: list.checks,
    claims,
    measurement: claims.mrTd,
    reportData: new Uint8Array(body.reportData),
    debug: (body.tdAttributes[0] & TD_ATTRIBUTES_DEBUG) !== 0,
    signature: hex(quote.signature),
  };
}

/**
 * Authenticate an Intel SGX ECDSA quote (v3) against Intel collateral at `options.at`. Same
 * contract as verifyTdxQuote.
 */
export function verifySgxQuote(bytes: Uint8Array, options: DcapVerifyOptions): SgxVerification {
  const ctx = validateOptions(options);
  const quote = parseSgxQuote(bytes);
  const list = new CheckList();
  const body = quote.body;
  const state = verifyDcapCommon("sgx", quote, ctx, list);

  list.run("tcb-status", () => tcbStatusCheck(state, ctx, () => undefined));

  const claims: SgxClaims = { ...sgxClaims(quote), ...commonClaims(quote, state, ctx) };
  return {
    kind: "sgx",
    trusted: list.trusted,
    checks: list.checks,
    claims,
    measurement: claims.mrEnclave,
    reportData: new Uint8Array(body.reportData),
    debug: (body.attributes[0] & SGX_FLAGS_DEBUG) !== 0,
    signature: hex(quote.signature),
  };
}

function validateOptions(options: DcapVerifyOptions): Context {
  if (typeof options !== "object" || options === null) {
    throw new ValidationError("DCAP verify options", [{ path: "", rule: "must be an object" }]);
  }
  if (!(options.at instanceof Date) || Number.isNaN(options.at.getTime())) {
    throw new ValidationError("DCAP verify options", [{ path: "at", rule: "must be a valid Date" }]);
  }
  return {
    at: options.at,
    collateral: options.collateral === undefined ? undefined : parseDcapCollateral(options.collateral),
  };
}

/** The checks SGX and TDX quotes share: signatures, PCK chain, CRLs, TCB info and QE identity. */
function verifyDcapCommon(
  kind: EvidenceKind,
  quote: DcapQuote<unknown>,
  ctx: Context,
  list: CheckList,
): DcapState {
  const { at } = ctx;
  const verdicts = ctx.collateral ? collateralVerdicts(ctx.collateral, at) : ABSENT_COLLATERAL;
  const state: DcapState = { collateralSigned: verdicts.tcbInfoSigner.ok && verdicts.qeIdentitySigner.ok };

  if (quote.trailingNonZero) {
    list.add(
      "trailing-bytes",
      warn(
        `${quote.paddingLength} unsigned byte(s) that are not zero padding follow the quote (at most ${MAX_TRAILING_BYTES} accepted); ignored, never interpreted`,
      ),
    );
  }
  if (!ctx.collateral) list.run("collateral", () => fail(NO_COLLATERAL));

  list.run("qe-vendor-id", () =>
    hex(quote.header.qeVendorId) === INTEL_QE_VENDOR_ID
      ? pass("quote was produced by Intel's quoting enclave")
      : fail("QE_VENDOR_ID is not Intel's"),
  );

  list.run("quote-signature", () =>
    verifyEcdsaRaw({
      publicKey: uncompressedPoint(quote.attestationKey),
      curve: "P-256",
      hash: "sha256",
      data: quote.signedRegion,
      signature: quote.signature,
    })
      ? pass(`attestation key signature over header and body (${quote.signedRegion.length} bytes) verifies`)
      : fail("quote signature does not verify with the attestation key"),
  );

  // The leaf as carried: the QE report signature and the PCK extensions are checked with it even
  // when its chain fails, so one failure does not hide the others.
  let carriedLeaf: ParsedCertificate | undefined;
  try {
    carriedLeaf = quote.pckChain.length > 0 ? parseCertificate(quote.pckChain[0]) : undefined;
  } catch (error) {
    if (!(error instanceof EnclaveError)) throw error;
  }

  list.run("pck-chain", () => {
    const r = verifyCertificateChain({ chain: quote.pckChain, trustedRoots: PINNED_INTEL_ROOT, at });
    if (!r.ok) return fail(describeChainFailure(r.failure));
    if (r.path.length !== 3) return fail("PCK chain must be leaf, PCK CA and the Intel SGX Root CA");
    if (r.leaf.subjectCommonName !== PCK_LEAF_CN) return fail("leaf is not an Intel SGX PCK Certificate");
    if (r.leaf.basicConstraints?.ca) return fail("PCK leaf is a CA certificate");
    if (!PCK_CA_CNS.has(r.path[1].subjectCommonName ?? ""))
      return fail("leaf issuer is not an Intel SGX PCK CA");
    state.pckPath = r.path;
    return pass(
      `PCK leaf -> ${r.path[1].subjectCommonName} -> pinned Intel SGX Root CA, valid at ${at.toISOString()}`,
    );
  });

  const unverified = () => (state.pckPath ? "" : " (from the carried PCK leaf; its chain did not verify)");
  list.run("pck-extensions", () => {
    if (!carriedLeaf) return fail("the quote carries no parsable PCK leaf certificate");
    state.pck = parsePckExtensions(carriedLeaf);
    return pass(`SGX extension (FMSPC, PCE-ID, TCB) parsed${unverified()}`);
  });

  list.run("qe-report-signature", () => {
    if (!carriedLeaf) return fail("the quote carries no parsable PCK leaf certificate");
    return verifyEcdsaRaw({
      publicKey: carriedLeaf.publicKey,
      hash: "sha256",
      data: quote.qeReport.raw,
      signature: quote.qeReportSignature,
    })
      ? pass(`QE report signature verifies with the PCK leaf key${unverified()}`)
      : fail("QE report signature does not verify with the PCK leaf key");
  });

  list.run("qe-report-data", () => {
    const digest = createHash("sha256").update(quote.attestationKey).update(quote.qeAuthData).digest();
    const data = quote.qeReport.reportData;
    if (!timingSafeEqual(digest, data.subarray(0, 32))) {
      return fail("QE REPORTDATA does not bind the attestation key and QE authentication data");
    }
    if (!data.subarray(32).every((b) => b === 0)) return fail("QE REPORTDATA bytes 32..63 are not zero");
    return pass("QE REPORTDATA = SHA-256(attestation key || QE auth data) || zeros");
  });

  list.run("pck-crl", () => {
    if (!ctx.collateral) return fail(NEEDS_COLLATERAL);
    if (!state.pckPath) return fail("needs a verified PCK certificate");
    const [leaf, pckCa] = state.pckPath;
    if (!verdicts.pckCrlIssuer.ok) return fail(verdicts.pckCrlIssuer.detail);
    const crlIssuer = verdicts.pckCrlIssuer.value;
    if (!bytesEqual(crlIssuer.subjectDer, pckCa.subjectDer) || !bytesEqual(crlIssuer.spki, pckCa.spki)) {
      return fail("PCK CRL issuer chain is not for the CA that issued the PCK certificate");
    }
    if (!verdicts.pckCrl.ok) return fail(`PCK CRL: ${verdicts.pckCrl.detail}`);
    const crl = verdicts.pckCrl.value;
    const valid = checkCrlIssuedBy(crl, pckCa, at);
    if (!valid.ok) return fail(`PCK CRL: ${valid.detail}`);
    if (isRevokedBy(crl, leaf)) return fail("PCK certificate is revoked");
    return pass(
      `PCK certificate not among ${crl.revokedSerials.size} revoked serial(s); CRL valid at ${at.toISOString()}`,
    );
  });

  const signed = (signer: CollateralVerdicts["tcbInfoSigner"]): Outcome =>
    signer.ok
      ? pass(`signed by ${signer.value.subjectCommonName}, chain valid at ${at.toISOString()}`)
      : fail(signer.detail);
  list.run("tcb-info-signature", () => signed(verdicts.tcbInfoSigner));
  list.run("qe-identity-signature", () => signed(verdicts.qeIdentitySigner));

  list.run("root-ca-crl", () => {
    if (!verdicts.rootCaCrl.ok) return fail(verdicts.rootCaCrl.detail);
    const crl = verdicts.rootCaCrl.value;
    const issuedByRoot: Array<[string, ParsedCertificate | undefined]> = [
      ["PCK CA", state.pckPath?.[1]],
      ["TCB info signer", verdicts.tcbInfoSigner.ok ? verdicts.tcbInfoSigner.value : undefined],
      ["QE identity signer", verdicts.qeIdentitySigner.ok ? verdicts.qeIdentitySigner.value : undefined],
    ];
    const missing = issuedByRoot.filter(([, c]) => !c).map(([n]) => n);
    if (missing.length) return fail(`cannot check unverified certificate(s): ${missing.join(", ")}`);
    const revoked = issuedByRoot.filter(([, c]) => isRevokedBy(crl, c!)).map(([n]) => n);
    if (revoked.length) return fail(`revoked by the Intel SGX Root CA: ${revoked.join(", ")}`);
    return pass(`PCK CA and collateral signers not revoked; root CA CRL valid at ${at.toISOString()}`);
  });

  list.run("tcb-info", () => {
    if (!verdicts.tcbInfo.ok) return fail(verdicts.tcbInfo.detail);
    const info = verdicts.tcbInfo.value;
    state.tcbInfo = info;
    const wanted = kind === "tdx" ? "TDX" : "SGX";
    if (info.id !== wanted) return fail(`TCB info is for ${info.id}, not ${wanted}`);
    if (kind === "tdx" && info.version !== 3) return fail("TDX needs TCB info version 3");
    return validityWindow("TCB info", info.issueDate, info.nextUpdate, at);
  });

  list.run("tcb-info-platform", () => {
    if (!ctx.collateral) return fail(NEEDS_COLLATERAL);
    if (!state.tcbInfo || !state.pck) return fail("needs a parsed TCB info and PCK extensions");
    if (!bytesEqual(state.tcbInfo.fmspc, state.pck.fmspc))
      return fail("TCB info FMSPC does not match the PCK certificate");
    if (!bytesEqual(state.tcbInfo.pceId, state.pck.pceId))
      return fail("TCB info PCE-ID does not match the PCK certificate");
    return pass("FMSPC and PCE-ID match the PCK certificate");
  });

  list.run("qe-identity", () => {
    if (!verdicts.qeIdentity.ok) return fail(verdicts.qeIdentity.detail);
    const identity = verdicts.qeIdentity.value;
    state.qeIdentity = identity;
    const wanted = kind === "tdx" ? "TD_QE" : "QE";
    if (identity.id !== wanted) return fail(`QE identity is for ${identity.id}, not ${wanted}`);
    // An expired identity is still matched (as an expired TCB info is still read), so the
    // expiry does not hide whether this QE is the one Intel describes.
    const window = validityWindow("QE identity", identity.issueDate, identity.nextUpdate, at);
    const qe = (state.qe = evaluateQeIdentity(identity, quote.qeReport));
    const expired = window.status === "fail" ? [window.detail] : [];
    if (!qe.ok) return fail([...expired, qe.reason].join("; "));
    if (expired.length) return fail(`${expired[0]}; the QE matches it otherwise (QE TCB ${qe.status})`);
    return pass(
      `QE matches ${wanted} identity (MRSIGNER, ISVPRODID, masked MISCSELECT/ATTRIBUTES); QE TCB ${qe.status}`,
    );
  });

  return state;
}

function validityWindow(what: string, issueDate: Date, nextUpdate: Date, at: Date): Outcome {
  if (at < issueDate) return fail(`${what} issueDate is after the validation time`);
  if (at > nextUpdate) return fail(`${what} nextUpdate is before the validation time (expired collateral)`);
  return pass(`${what} valid from ${issueDate.toISOString()} to ${nextUpdate.toISOString()}`);
}

function tcbStatusCheck(
  state: DcapState,
  ctx: Context,
  tdxInputs: () => { teeTcbSvn: Uint8Array; teeTcbSvn2?: Uint8Array } | undefined,
): Outcome {
  if (!ctx.collateral) return fail(NEEDS_COLLATERAL);
  if (!state.collateralSigned) {
    return fail("no TCB status is derived from TCB info or QE identity whose signature did not verify");
  }
  if (!state.tcbInfo || !state.pck || !state.qe?.ok) {
    return fail("needs a parsed TCB info, PCK extensions and a matching QE identity");
  }
  const r = evaluatePlatformTcb(state.tcbInfo, state.pck, state.qe.status, tdxInputs());
  state.tcb = r;
  if (!r.ok) return fail(r.reason);
  const advisories = r.advisoryIds.length ? `; advisories ${r.advisoryIds.join(", ")}` : "";
  // Revoked is a verdict of Intel's signed TCB info, never a status any policy may accept.
  if (r.status === "Revoked") return fail(`TCB status Revoked${advisories}`);
  return pass(`TCB status ${r.status}, from Intel's signed TCB info${advisories}`);
}

function uncompressedPoint(xy: Uint8Array): Uint8Array {
  const point = new Uint8Array(65);
  point[0] = 0x04;
  point.set(xy, 1);
  return point;
}

/** An enclave report's identity fields (the SGX enclave's, or the quoting enclave's). */
export interface EnclaveReportClaims {
  cpuSvn: string;
  miscSelect: string;
  attributes: string;
  mrEnclave: string;
  mrSigner: string;
  isvProdId: number;
  isvSvn: number;
}

/** What SGX and TDX quotes share: the header, the QE, and what the collateral established. */
export interface DcapCommonClaims {
  quoteVersion: number;
  teeType: string;
  qeVendorId: string;
  userData: string;
  paddingBytes: number;
  qeReport: EnclaveReportClaims;
  validationTime: string;
  pck?: {
    fmspc: string;
    pceId: string;
    pceSvn: number;
    cpuSvn: string;
    tcbComponents: number[];
    sgxType: number;
  };
  pckCertificate?: { issuer?: string; serialNumber: string; notBefore: string; notAfter: string };
  rootFingerprint?: string;
  tcbInfo?: {
    id: string;
    version: number;
    issueDate: string;
    nextUpdate: string;
    tcbEvaluationDataNumber: number;
  };
  qeIdentity?: { id: string; issueDate: string; nextUpdate: string; tcbEvaluationDataNumber: number };
  qeTcbStatus?: string;
  /** The platform's TCB status from Intel's signed TCB info; absent when it could not be derived. */
  tcbStatus?: TcbStatus;
  tcbDate?: string;
  advisoryIds?: string[];
}

/** A TDX quote's claims: the TD report (bytes as hex) and the DCAP common claims. */
export interface TdxClaims extends DcapCommonClaims {
  tdReportVersion: "1.0" | "1.5";
  teeTcbSvn: string;
  mrSeam: string;
  mrSignerSeam: string;
  seamAttributes: string;
  tdAttributes: string;
  xfam: string;
  mrTd: string;
  mrConfigId: string;
  mrOwner: string;
  mrOwnerConfig: string;
  /** RTMR0..3. */
  rtmr: string[];
  reportData: string;
  bodyType?: number;
  teeTcbSvn2?: string;
  mrServiceTd?: string;
}

/** An SGX quote's claims: the enclave report (bytes as hex) and the DCAP common claims. */
export interface SgxClaims extends DcapCommonClaims, EnclaveReportClaims {
  isvExtProdId: string;
  configId: string;
  configSvn: number;
  isvFamilyId: string;
  reportData: string;
  qeSvn: number;
  pceSvn: number;
}

function enclaveReportClaims(r: EnclaveReport): EnclaveReportClaims {
  return {
    cpuSvn: hex(r.cpuSvn),
    miscSelect: hex(r.miscSelect),
    attributes: hex(r.attributes),
    mrEnclave: hex(r.mrEnclave),
    mrSigner: hex(r.mrSigner),
    isvProdId: r.isvProdId,
    isvSvn: r.isvSvn,
  };
}

function tdxClaims(quote: DcapQuote<TdReport>): Omit<TdxClaims, keyof DcapCommonClaims> {
  const b = quote.body;
  const claims: Omit<TdxClaims, keyof DcapCommonClaims> = {
    tdReportVersion: b.version,
    teeTcbSvn: hex(b.teeTcbSvn),
    mrSeam: hex(b.mrSeam),
    mrSignerSeam: hex(b.mrSignerSeam),
    seamAttributes: hex(b.seamAttributes),
    tdAttributes: hex(b.tdAttributes),
    xfam: hex(b.xfam),
    mrTd: hex(b.mrTd),
    mrConfigId: hex(b.mrConfigId),
    mrOwner: hex(b.mrOwner),
    mrOwnerConfig: hex(b.mrOwnerConfig),
    rtmr: b.rtmrs.map(hex),
    reportData: hex(b.reportData),
  };
  if (quote.bodyType !== undefined) claims.bodyType = quote.bodyType;
  if (b.teeTcbSvn2) claims.teeTcbSvn2 = hex(b.teeTcbSvn2);
  if (b.mrServiceTd) claims.mrServiceTd = hex(b.mrServiceTd);
  return claims;
}

function sgxClaims(quote: DcapQuote<EnclaveReport>): Omit<SgxClaims, keyof DcapCommonClaims> {
  const b = quote.body;
  return {
    ...enclaveReportClaims(b),
    isvExtProdId: hex(b.isvExtProdId),
    configId: hex(b.configId),
    configSvn: b.configSvn,
    isvFamilyId: hex(b.isvFamilyId),
    reportData: hex(b.reportData),
    qeSvn: quote.header.qeSvn,
    pceSvn: quote.header.pceSvn,
  };
}

function commonClaims(quote: DcapQuote<unknown>, state: DcapState, ctx: Context): DcapCommonClaims {
  const claims: DcapCommonClaims = {
    quoteVersion: quote.header.version,
    teeType: `0x${quote.header.teeType.toString(16).padStart(2, "0")}`,
    qeVendorId: hex(quote.header.qeVendorId),
    userData: hex(quote.header.userData),
    paddingBytes: quote.paddingLength,
    qeReport: enclaveReportClaims(quote.qeReport),
    validationTime: ctx.at.toISOString(),
  };
  if (state.pck) {
    claims.pck = {
      fmspc: hex(state.pck.fmspc),
      pceId: hex(state.pck.pceId),
      pceSvn: state.pck.pceSvn,
      cpuSvn: hex(state.pck.cpuSvn),
      tcbComponents: state.pck.tcbComponents,
      sgxType: state.pck.sgxType,
    };
  }
  if (state.pckPath) {
    const [leaf, ca, root] = state.pckPath;
    claims.pckCertificate = {
      issuer: ca.subjectCommonName,
      serialNumber: leaf.serialNumber,
      notBefore: leaf.notBefore.toISOString(),
      notAfter: leaf.notAfter.toISOString(),
    };
    claims.rootFingerprint = root.fingerprint256;
  }
  if (state.tcbInfo) {
    claims.tcbInfo = {
      id: state.tcbInfo.id,
      version: state.tcbInfo.version,
      issueDate: state.tcbInfo.issueDate.toISOString(),
      nextUpdate: state.tcbInfo.nextUpdate.toISOString(),
      tcbEvaluationDataNumber: state.tcbInfo.tcbEvaluationDataNumber,
    };
  }
  if (state.qeIdentity) {
    claims.qeIdentity = {
      id: state.qeIdentity.id,
      issueDate: state.qeIdentity.issueDate.toISOString(),
      nextUpdate: state.qeIdentity.nextUpdate.toISOString(),
      tcbEvaluationDataNumber: state.qeIdentity.tcbEvaluationDataNumber,
    };
  }
  if (state.qe?.ok) claims.qeTcbStatus = state.qe.status;
  if (state.tcb?.ok) {
    claims.tcbStatus = state.tcb.status;
    claims.tcbDate = state.tcb.tcbDate;
    claims.advisoryIds = state.tcb.advisoryIds;
  }
  return claims;
}
