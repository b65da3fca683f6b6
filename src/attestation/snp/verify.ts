import { ValidationError } from "../../errors.js";
import {
  bytesEqual,
  CertificateFormatError,
  describeChainFailure,
  parseCertificate,
  pemToDerList,
  pinnedRoot,
  verifyCertificateChain,
  verifyEcdsaRaw,
  type CertificateInput,
  type ParsedCertificate,
} from "../pki/index.js";
import { CheckList, fail, pass, skip } from "../checks.js";
import { EvidenceFormatError, type SnpVerification } from "../types.js";
import { AMD_ROOT_KEYS, AMD_SIGNING_KEYS, type AmdProduct } from "./amd-roots.js";
import {
  parseSnpReport,
  productFromCpuid,
  type SnpGuestPolicy,
  type SnpPlatformInfo,
  type SnpReport,
  type SnpSignerInfo,
  type SnpTcb,
  type SnpVersionTriple,
  type TcbLayout,
} from "./report.js";
import { parseVekExtensions, type VekExtensions } from "./vek-extensions.js";

/** The AMD certificates for one report: the VCEK/VLEK, plus optionally its ASK/ASVK and ARK. */
export interface SnpCertificates {
  /** VCEK or VLEK certificate: DER bytes, an X.509 object, or PEM text. */
  vek: CertificateInput | string;
  /**
   * [ASK or ASVK, ARK] as one PEM bundle (the KDS cert_chain format) or a list. Optional: the
   * pinned AMD intermediates are used when absent. A carried ARK counts only if it is pinned.
   */
  chain?: string | readonly (CertificateInput | string)[];
}

export interface VerifySnpOptions {
  /** Validation time for every certificate. */
  at: Date;
  /** An SnpCertificates object, or a leaf-first list / PEM bundle [VEK, ASK?, ARK?]. */
  certificates: SnpCertificates | string | readonly (CertificateInput | string)[];
  /** Replaces the pinned AMD roots (for a new AMD root or tests). Roots are matched by fingerprint. */
  trustedRoots?: readonly { product: AmdProduct; certificate: CertificateInput | string }[];
}

/**
 * Authenticates a raw SEV-SNP attestation report against AMD's PKI: the VEK chain to a pinned ARK,
 * the signing key, the signature, the product, the VEK's TCB and chip binding, and the firmware's
 * TCB ordering. No trust policy is applied here (debug, VMPL, minimum TCB and allow-lists are the
 * validator's). Malformed report or certificate bytes throw EvidenceFormatError; every outcome is a
 * named check, and `trusted` is true only when no check failed.
 */
export function verifySnpReport(reportBytes: Uint8Array, options: VerifySnpOptions): SnpVerification {
  validateOptions(options);
  const firstPass = parseSnpReport(reportBytes);
  const { vek, chain } = collectCertificates(options.certificates);
  const vekExt = wrapFormat(() => parseVekExtensions(vek), "certificates.vek");

  const list = new CheckList();
  const { pass, fail, skip } = emitters(list);

  // 1. Certificate chain VEK -> ASK/ASVK -> pinned ARK, valid at `at`.
  const roots = pinnedRoots(options.trustedRoots);
  const path = [vek, ...(chain.length > 0 ? chain : defaultIntermediates(vek))];
  const chainResult = verifyCertificateChain({
    chain: path.map((c) => c.der),
    trustedRoots: roots.certs,
    at: options.at,
  });
  let product: AmdProduct | undefined;
  let signer: "vcek" | "vlek" | undefined;
  if (chainResult.ok) {
    product = roots.productOf.get(chainResult.rootFingerprint);
    signer = signerKind(chainResult.path[1]);
    pass(
      "certificate-chain",
      `${chainResult.path.map((c) => c.subjectCommonName ?? "?").join(" <- ")}; ARK-${product} pinned by SHA-256 fingerprint; all valid at ${options.at.toISOString()}`,
    );
  } else {
    fail("certificate-chain", describeChainFailure(chainResult.failure));
  }

  // The report is re-read with the product the chain established: it fixes the TCB layout.
  const report = product ? parseSnpReport(reportBytes, { product }) : firstPass;

  // 2. Which key signed: SIGNING_KEY in the report must name the kind of certificate given.
  checkSigningKey(report, vek, vekExt, signer, pass, fail);

  // 3. The report signature over bytes 0x000..0x29F with the VEK's P-384 key.
  const sigOk = verifyEcdsaRaw({
    publicKey: vek.publicKey,
    hash: "sha384",
    data: report.signedBytes,
    signature: Buffer.concat([report.signature.r, report.signature.s]),
  });
  if (report.signerInfo.signingKey === "none")
    fail("report-signature", "SIGNING_KEY is NONE: the report is unsigned");
  else if (vek.publicKey.asymmetricKeyDetails?.namedCurve !== "secp384r1")
    fail("report-signature", "the VEK public key is not ECDSA P-384");
  else if (sigOk)
    pass("report-signature", "ECDSA P-384/SHA-384 over bytes 0x000..0x29F verifies with the VEK");
  else fail("report-signature", "ECDSA P-384/SHA-384 signature does not verify with the VEK");

  // 4. Product consistency: ARK, VEK productName, and CPUID (version >= 3) must agree.
  checkProduct(report, vekExt, product, pass, fail);

  // 5. VEK TCB extensions must equal REPORTED_TCB.
  checkTcbBinding(report, vekExt, product, pass, fail);

  // 6. CHIP_ID binding (VCEK only).
  checkChipId(report, vekExt, signer ?? report.signerInfo.signingKey, product, pass, fail, skip);

  // 7. The check that needs only the report.
  checkTcbOrder(report, pass, fail);

  return snpVerification(list, snpClaims(report, vekExt, product, signer), report);
}

function snpVerification(list: CheckList, claims: SnpClaims, report: SnpReport): SnpVerification {
  return {
    kind: "snp",
    trusted: list.trusted,
    checks: list.checks,
    claims,
    measurement: claims.measurement,
    reportData: report.reportData,
    debug: report.policy.debug,
    signature: claims.signature.r + claims.signature.s,
  };
}

type Emit = (name: string, detail: string) => void;

function emitters(list: CheckList): { pass: Emit; fail: Emit; skip: Emit } {
  return {
    pass: (name, detail) => list.add(name, pass(detail)),
    fail: (name, detail) => list.add(name, fail(detail)),
    skip: (name, detail) => list.add(name, skip(detail)),
  };
}

/** Firmware never reports a TCB above the one installed, and never runs below the committed one. */
function checkTcbOrder(report: SnpReport, pass: Emit, fail: Emit): void {
  const order = tcbOrderProblems(report);
  if (order.length) fail("tcb-order", order.join("; "));
  else pass("tcb-order", "REPORTED_TCB <= CURRENT_TCB and COMMITTED_TCB <= CURRENT_TCB in every component");
}

/** Why an SNP report without its VCEK/VLEK is not trusted, whatever its own fields say. */
export const NO_VEK =
  "no VCEK/VLEK certificate given (from the report's certificate table or --cert); AMD's KDS that " +
  "issues it is an online service, so the signature cannot be checked";

/**
 * An SNP report without its VCEK/VLEK: the certificate-dependent checks fail for want of it, the
 * report-only check (TCB order) still runs, and the validator still reads the claims (debug, VMPL,
 * minimum TCB, allow-lists, REPORT_DATA). Never trusted. Malformed reports throw EvidenceFormatError.
 */
export function verifySnpReportWithoutVek(reportBytes: Uint8Array): SnpVerification {
  const report = parseSnpReport(reportBytes);
  const list = new CheckList();
  const { pass, fail } = emitters(list);
  fail("certificates", NO_VEK);
  const needs = "needs the VCEK/VLEK certificate; none was given";
  for (const name of [
    "certificate-chain",
    "signing-key",
    "report-signature",
    "product",
    "tcb-binding",
    "chip-id",
  ]) {
    fail(name, needs);
  }
  checkTcbOrder(report, pass, fail);
  return snpVerification(list, snpClaims(report), report);
}

function checkSigningKey(
  report: SnpReport,
  vek: ParsedCertificate,
  ext: VekExtensions,
  signer: "vcek" | "vlek" | undefined,
  pass: Emit,
  fail: Emit,
): void {
  const declared = report.signerInfo.signingKey;
  if (declared === "none") return fail("signing-key", "SIGNING_KEY is NONE (7): no key signed the report");
  // What the certificate is: its issuer (when the chain established it), its CN and its extensions.
  const cn = vek.subjectCommonName;
  const looksVcek = cn === "SEV-VCEK" && ext.hwId !== undefined && ext.cspId === undefined;
  const looksVlek = cn === "SEV-VLEK" && ext.hwId === undefined && ext.cspId !== undefined;
  const kind = looksVcek ? "vcek" : looksVlek ? "vlek" : undefined;
  if (!kind)
    return fail(
      "signing-key",
      "the certificate is neither a VCEK (CN SEV-VCEK, hwID) nor a VLEK (CN SEV-VLEK, cspID)",
    );
  if (signer && signer !== kind)
    return fail(
      "signing-key",
      `a ${kind.toUpperCase()} issued by an AMD key that issues ${signer.toUpperCase()}s`,
    );
  if (kind !== declared) {
    return fail(
      "signing-key",
      `report SIGNING_KEY is ${declared.toUpperCase()} but a ${kind.toUpperCase()} was given`,
    );
  }
  pass(
    "signing-key",
    `report SIGNING_KEY ${declared.toUpperCase()} matches the ${kind.toUpperCase()} certificate`,
  );
}

function checkProduct(
  report: SnpReport,
  ext: VekExtensions,
  product: AmdProduct | undefined,
  pass: Emit,
  fail: Emit,
): void {
  if (!product) {
    fail("product", "the product is unknown because the certificate chain did not verify");
  } else {
    const problems: string[] = [];
    const namePrefix = ext.productName?.split("-")[0];
    if (namePrefix !== product) problems.push("VEK productName does not name the ARK's product");
    if (report.cpuid) {
      const fromCpuid = productFromCpuid(report.cpuid.family, report.cpuid.model);
      if (fromCpuid !== product) problems.push("report CPUID family/model is not the ARK's product");
    }
    const expectedStruct = product === "Turin" ? 1 : 0;
    if ((ext.structVersion ?? 0) !== expectedStruct)
      problems.push("VEK structVersion does not fit the product");
    if (problems.length) fail("product", problems.join("; "));
    else pass("product", `${product} (ARK, VEK productName${report.cpuid ? ", CPUID" : ""} agree)`);
  }
}

function checkTcbBinding(
  report: SnpReport,
  ext: VekExtensions,
  product: AmdProduct | undefined,
  pass: Emit,
  fail: Emit,
): void {
  const t = report.reportedTcb;
  const missing: string[] = (["blSpl", "teeSpl", "snpSpl", "ucodeSpl"] as const).filter(
    (k) => ext[k] === undefined,
  );
  if (product === "Turin" && ext.fmcSpl === undefined) missing.push("fmcSpl");
  if (missing.length) return fail("tcb-binding", `VEK lacks TCB extension(s) ${missing.join(", ")}`);
  if (product !== "Turin" && ext.fmcSpl !== undefined)
    return fail("tcb-binding", "fmcSPL is only defined for Turin");
  const diffs: string[] = [];
  const cmp = (name: string, cert: number | undefined, rep: number | undefined) => {
    if ((cert ?? 0) !== (rep ?? 0)) diffs.push(name);
  };
  cmp("bootloader", ext.blSpl, t.bootloader);
  cmp("tee", ext.teeSpl, t.tee);
  cmp("snp", ext.snpSpl, t.snp);
  cmp("microcode", ext.ucodeSpl, t.microcode);
  if (product === "Turin") cmp("fmc", ext.fmcSpl, t.fmc);
  // Reserved TCB bytes are zero in the report (the parser checked), so their SPLs must be zero too.
  for (const k of ["spl4", "spl5", "spl6", "spl7"] as const) if ((ext[k] ?? 0) !== 0) diffs.push(k);
  if (diffs.length) return fail("tcb-binding", `VEK TCB differs from REPORTED_TCB in ${diffs.join(", ")}`);
  pass("tcb-binding", `VEK TCB equals REPORTED_TCB ${formatTcb(t)}`);
}

function tcbOrderProblems(report: SnpReport): string[] {
  const keys = ["bootloader", "tee", "snp", "microcode", "fmc"] as const;
  const le = (a: SnpTcb, b: SnpTcb) => keys.every((k) => (a[k] ?? 0) <= (b[k] ?? 0));
  const out: string[] = [];
  if (!le(report.reportedTcb, report.currentTcb)) out.push("REPORTED_TCB exceeds CURRENT_TCB");
  if (!le(report.committedTcb, report.currentTcb)) out.push("COMMITTED_TCB exceeds CURRENT_TCB");
  return out;
}

function checkChipId(
  report: SnpReport,
  ext: VekExtensions,
  kind: "vcek" | "vlek" | "none",
  product: AmdProduct | undefined,
  pass: Emit,
  fail: Emit,
  skip: Emit,
): void {
  if (kind === "vlek") {
    if (ext.hwId) return fail("chip-id", "a VLEK must not carry a hwID");
    return skip("chip-id", "VLEK-signed: a VLEK is not bound to one chip");
  }
  if (!ext.hwId) return fail("chip-id", "VCEK has no hwID extension");
  const chip = report.chipId;
  if (chip.every((x) => x === 0))
    return fail("chip-id", "CHIP_ID is masked (all zero); the VCEK cannot be bound to it");
  // Turin VCEKs carry an 8-byte hwID; the report's CHIP_ID is those 8 bytes then zeros.
  const expectedLength = product === "Turin" ? 8 : 64;
  const ok =
    ext.hwId.length === expectedLength &&
    bytesEqual(ext.hwId, chip.subarray(0, expectedLength)) &&
    chip.subarray(expectedLength).every((x) => x === 0);
  if (ok) pass("chip-id", "VCEK hwID equals the report's CHIP_ID");
  else fail("chip-id", "VCEK hwID differs from the report's CHIP_ID");
}

function signerKind(intermediate: ParsedCertificate | undefined): "vcek" | "vlek" | undefined {
  const cn = intermediate?.subjectCommonName ?? "";
  // AMD names its CAs "SEV-<Product>" (ASK, issues VCEKs) and "SEV-VLEK-<Product>" (ASVK).
  if (/^SEV-VLEK-(Milan|Genoa|Turin)$/.test(cn)) return "vlek";
  if (/^SEV-(Milan|Genoa|Turin)$/.test(cn)) return "vcek";
  return undefined;
}

function formatTcb(t: SnpTcb): string {
  const fmc = t.fmc !== undefined ? ` fmc ${t.fmc}` : "";
  return `(bl ${t.bootloader} tee ${t.tee} snp ${t.snp} ucode ${t.microcode}${fmc})`;
}

interface PinnedRoots {
  certs: ParsedCertificate[];
  productOf: Map<string, AmdProduct>;
}

let defaultRoots: PinnedRoots | undefined;

function pinnedRoots(override: VerifySnpOptions["trustedRoots"]): PinnedRoots {
  if (!override && defaultRoots) return defaultRoots;
  const certs: ParsedCertificate[] = [];
  const productOf = new Map<string, AmdProduct>();
  if (override) {
    for (const r of override) {
      const cert = toCertificate(r.certificate, "trustedRoots");
      certs.push(cert);
      productOf.set(cert.fingerprint256, r.product);
    }
    return { certs, productOf };
  }
  for (const root of AMD_ROOT_KEYS) {
    // The embedded PEM must be the certificate whose fingerprint we pin (PINNED_ROOT_MISMATCH).
    const cert = pinnedRoot(`AMD root ${root.commonName}`, root.pem, root.sha256)();
    certs.push(cert);
    productOf.set(cert.fingerprint256, root.product);
  }
  defaultRoots = { certs, productOf };
  return defaultRoots;
}

let signingKeys: ParsedCertificate[] | undefined;

/** The embedded ASK/ASVK whose subject issued the VEK (still verified against the pinned ARK). */
function defaultIntermediates(vek: ParsedCertificate): ParsedCertificate[] {
  signingKeys ??= AMD_SIGNING_KEYS.map((k) => pinnedRoot(`AMD key ${k.commonName}`, k.pem, k.sha256)());
  return signingKeys.filter((k) => bytesEqual(k.subjectDer, vek.issuerDer)).slice(0, 1);
}

function collectCertificates(input: VerifySnpOptions["certificates"]): {
  vek: ParsedCertificate;
  chain: ParsedCertificate[];
} {
  let list: (CertificateInput | string)[];
  if (typeof input === "string") list = [input];
  else if (Array.isArray(input)) list = [...input];
  else {
    const obj = input as SnpCertificates;
    const rest = obj.chain === undefined ? [] : typeof obj.chain === "string" ? [obj.chain] : [...obj.chain];
    list = [obj.vek, ...rest];
  }
  const certs: ParsedCertificate[] = [];
  list.forEach((item, i) => {
    const where = i === 0 ? "certificates.vek" : `certificates.chain[${i - 1}]`;
    if (typeof item === "string") {
      const ders = wrapFormat(() => pemToDerList(item), where);
      if (ders.length === 0) throw new EvidenceFormatError("snp", `${where}: no PEM CERTIFICATE block`);
      for (const der of ders) certs.push(toCertificate(der, where));
    } else {
      certs.push(toCertificate(item, where));
    }
  });
  if (certs.length === 0)
    throw new EvidenceFormatError("snp", "certificates: no VCEK or VLEK certificate was given");
  return { vek: certs[0], chain: certs.slice(1) };
}

function toCertificate(input: CertificateInput | string, where: string): ParsedCertificate {
  return wrapFormat(() => {
    if (typeof input !== "string") return parseCertificate(input);
    const ders = pemToDerList(input);
    if (ders.length !== 1) throw new CertificateFormatError("expected exactly one PEM certificate");
    return parseCertificate(ders[0]);
  }, where);
}

function wrapFormat<T>(fn: () => T, where: string): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof CertificateFormatError) throw new EvidenceFormatError("snp", `${where}: ${e.message}`);
    throw e;
  }
}

function validateOptions(options: VerifySnpOptions): void {
  if (!(options?.at instanceof Date) || Number.isNaN(options.at.getTime())) {
    throw new ValidationError("SNP verification options", [{ path: "at", rule: "must be a valid Date" }]);
  }
}

/** What the VEK certificate says (its KDS extensions), when one was given. */
export interface SnpVekClaims {
  productName?: string;
  structVersion?: number;
  tcb: { bootloader?: number; tee?: number; snp?: number; microcode?: number; fmc?: number };
  hwId?: string;
  cspId?: string;
}

/** An SEV-SNP report's claims: every parsed field (bytes as hex) and what the chain established. */
export interface SnpClaims {
  version: number;
  guestSvn: number;
  policy: SnpGuestPolicy;
  familyId: string;
  imageId: string;
  /** 0..3 for guest requests; 0xFFFFFFFF marks a host-requested report. */
  vmpl: number;
  signatureAlgo: number;
  currentTcb: SnpTcb;
  platformInfo: SnpPlatformInfo;
  signerInfo: SnpSignerInfo;
  reportData: string;
  measurement: string;
  hostData: string;
  idKeyDigest: string;
  authorKeyDigest: string;
  reportId: string;
  reportIdMa: string;
  reportedTcb: SnpTcb;
  cpuid?: { family: number; model: number; stepping: number };
  chipId: string;
  committedTcb: SnpTcb;
  currentVersion: SnpVersionTriple;
  committedVersion: SnpVersionTriple;
  launchTcb: SnpTcb;
  launchMitVector?: string;
  currentMitVector?: string;
  /** ECDSA r and s, big-endian hex. */
  signature: { r: string; s: string };
  tcbLayout: TcbLayout;
  /** The processor line the pinned ARK established (absent when the chain did not verify). */
  product?: AmdProduct;
  signingKeyCertificate?: "vcek" | "vlek";
  vek?: SnpVekClaims;
}

/** JSON-serialisable claims: every parsed field, hex for bytes. */
export function snpClaims(
  report: SnpReport,
  ext?: VekExtensions,
  product?: AmdProduct,
  signer?: "vcek" | "vlek",
): SnpClaims {
  return {
    version: report.version,
    guestSvn: report.guestSvn,
    policy: report.policy,
    familyId: hex(report.familyId),
    imageId: hex(report.imageId),
    vmpl: report.vmpl,
    signatureAlgo: report.signatureAlgo,
    currentTcb: report.currentTcb,
    platformInfo: report.platformInfo,
    signerInfo: report.signerInfo,
    reportData: hex(report.reportData),
    measurement: hex(report.measurement),
    hostData: hex(report.hostData),
    idKeyDigest: hex(report.idKeyDigest),
    authorKeyDigest: hex(report.authorKeyDigest),
    reportId: hex(report.reportId),
    reportIdMa: hex(report.reportIdMa),
    reportedTcb: report.reportedTcb,
    ...(report.cpuid ? { cpuid: report.cpuid } : {}),
    chipId: hex(report.chipId),
    committedTcb: report.committedTcb,
    currentVersion: report.currentVersion,
    committedVersion: report.committedVersion,
    launchTcb: report.launchTcb,
    ...(report.launchMitVector !== undefined
      ? { launchMitVector: report.launchMitVector, currentMitVector: report.currentMitVector }
      : {}),
    signature: { r: hex(report.signature.r), s: hex(report.signature.s) },
    tcbLayout: report.tcbLayout,
    ...(product ? { product } : {}),
    ...(signer ? { signingKeyCertificate: signer } : {}),
    ...(ext
      ? {
          vek: {
            ...(ext.productName !== undefined ? { productName: ext.productName } : {}),
            ...(ext.structVersion !== undefined ? { structVersion: ext.structVersion } : {}),
            tcb: {
              bootloader: ext.blSpl,
              tee: ext.teeSpl,
              snp: ext.snpSpl,
              microcode: ext.ucodeSpl,
              fmc: ext.fmcSpl,
            },
            ...(ext.hwId ? { hwId: hex(ext.hwId) } : {}),
            ...(ext.cspId !== undefined ? { cspId: ext.cspId } : {}),
          },
        }
      : {}),
  };
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}
