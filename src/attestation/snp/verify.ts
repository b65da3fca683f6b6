import { timingSafeEqual } from "node:crypto";
import { ValidationError, type FieldIssue } from "../../errors.js";
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
import { EvidenceFormatError, type VerificationResult } from "../types.js";
import { AMD_ROOT_KEYS, AMD_SIGNING_KEYS, type AmdProduct } from "./amd-roots.js";
import { parseSnpReport, productFromCpuid, type SnpReport, type SnpTcb } from "./report.js";
import { parseVekExtensions, type VekExtensions } from "./vek-extensions.js";

export interface SnpMinTcb {
  bootloader?: number;
  tee?: number;
  snp?: number;
  microcode?: number;
  /** Turin only; ignored for Milan and Genoa. */
  fmc?: number;
}

export interface SnpVerificationPolicy {
  /** Allowed MEASUREMENT values (48-byte hex). Without a list the check is reported as skipped. */
  measurements?: readonly string[];
  /** Allowed HOST_DATA values (32-byte hex). Without a list the check is reported as skipped. */
  hostData?: readonly string[];
  /** Component-wise minimum of REPORTED_TCB (the TCB the VCEK/VLEK is certified for). */
  minTcb?: SnpMinTcb;
  /** Highest accepted VMPL (0..3). Default 3: any guest-requested report; host-requested reports never pass. */
  maxVmpl?: number;
  /** Accept guests whose policy allows debugging (their memory is readable by the host). Default false. */
  allowDebug?: boolean;
  /** Accepted processor lines. Without a list every pinned product is accepted and the check is skipped. */
  allowedProducts?: readonly AmdProduct[];
}

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
  policy?: SnpVerificationPolicy;
  /** The 64 bytes the report's REPORT_DATA must equal (nonce / key binding). */
  expectedReportData?: Uint8Array;
  /** Replaces the pinned AMD roots (for a new AMD root or tests). Roots are matched by fingerprint. */
  trustedRoots?: readonly { product: AmdProduct; certificate: CertificateInput | string }[];
}

const PRODUCTS: readonly AmdProduct[] = ["Milan", "Genoa", "Turin"];

/**
 * Verifies a raw SEV-SNP attestation report against AMD's PKI and a policy. Malformed report or
 * certificate bytes throw EvidenceFormatError; every verification outcome is a named check, and
 * `trusted` is true only when no check failed.
 */
export function verifySnpReport(reportBytes: Uint8Array, options: VerifySnpOptions): VerificationResult {
  validateOptions(options);
  const policy = options.policy ?? {};
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
  checkProduct(report, vekExt, product, policy, pass, fail, skip);

  // 5. VEK TCB extensions must equal REPORTED_TCB.
  checkTcbBinding(report, vekExt, product, pass, fail);

  // 6. CHIP_ID binding (VCEK only).
  checkChipId(report, vekExt, signer ?? report.signerInfo.signingKey, product, pass, fail, skip);

  // 7. Guest policy, platform and report data: the checks that need only the report.
  checkReportOnly(report, policy, options.expectedReportData, pass, fail, skip);

  const claims = snpClaims(report, vekExt, product, signer);
  return {
    kind: "snp",
    trusted: list.trusted,
    checks: list.checks,
    claims,
    measurement: hex(report.measurement),
    reportData: report.reportData,
    debug: report.policy.debug,
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

/**
 * The checks that need only the report: TCB ordering, debug, VMPL, minimum TCB, allow-lists and
 * REPORT_DATA. They run whether or not a VEK is at hand, so a missing certificate hides none.
 */
function checkReportOnly(
  report: SnpReport,
  policy: SnpVerificationPolicy,
  expectedReportData: Uint8Array | undefined,
  pass: Emit,
  fail: Emit,
  skip: Emit,
): void {
  // Firmware never reports a TCB above the one installed, and never runs below the committed one.
  const order = tcbOrderProblems(report);
  if (order.length) fail("tcb-order", order.join("; "));
  else pass("tcb-order", "REPORTED_TCB <= CURRENT_TCB and COMMITTED_TCB <= CURRENT_TCB in every component");

  if (!report.policy.debug) pass("debug", "guest policy DEBUG bit (19) is clear");
  else if (policy.allowDebug)
    pass("debug", "guest policy DEBUG bit (19) is set; allowed by policy.allowDebug");
  else fail("debug", "guest policy DEBUG bit (19) is set: the host can read and write guest memory");

  const maxVmpl = policy.maxVmpl ?? 3;
  if (report.vmpl === 0xffffffff) fail("vmpl", "report was requested by the host, not by the guest");
  else if (report.vmpl <= maxVmpl) pass("vmpl", `VMPL ${report.vmpl} <= ${maxVmpl}`);
  else fail("vmpl", `VMPL ${report.vmpl} > ${maxVmpl}`);

  checkMinTcb(report, policy.minTcb, pass, fail, skip);
  checkAllowList("measurement", report.measurement, policy.measurements, pass, fail, skip);
  checkAllowList("host-data", report.hostData, policy.hostData, pass, fail, skip);

  if (!expectedReportData) skip("report-data", "no expected REPORT_DATA was given");
  else if (timingSafeEqual(report.reportData, expectedReportData))
    pass("report-data", "REPORT_DATA equals the expected 64 bytes");
  else fail("report-data", "REPORT_DATA differs from the expected value");
}

/** Why an SNP report without its VCEK/VLEK is not trusted, whatever its own fields say. */
export const NO_VEK =
  "no VCEK/VLEK certificate given (from the report's certificate table or --cert); AMD's KDS that " +
  "issues it is an online service, so the signature cannot be checked";

/**
 * An SNP report without its VCEK/VLEK: the certificate-dependent checks fail for want of it, the
 * report-only checks (debug, VMPL, TCB order, minimum TCB, allow-lists, REPORT_DATA) still run and
 * are reported. Never trusted. Malformed reports throw EvidenceFormatError.
 */
export function verifySnpReportWithoutVek(
  reportBytes: Uint8Array,
  options: Pick<VerifySnpOptions, "policy" | "expectedReportData"> = {},
): VerificationResult {
  const report = parseSnpReport(reportBytes);
  const list = new CheckList();
  const { pass, fail, skip } = emitters(list);
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
  checkReportOnly(report, options.policy ?? {}, options.expectedReportData, pass, fail, skip);
  return {
    kind: "snp",
    trusted: false,
    checks: list.checks,
    claims: snpClaims(report),
    measurement: hex(report.measurement),
    reportData: report.reportData,
    debug: report.policy.debug,
  };
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
  policy: SnpVerificationPolicy,
  pass: Emit,
  fail: Emit,
  skip: Emit,
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
  if (!policy.allowedProducts) skip("product-allowed", "no product allow-list in the policy");
  else if (product && policy.allowedProducts.includes(product))
    pass("product-allowed", `${product} is allowed`);
  else fail("product-allowed", `${product ?? "unknown product"} is not in the allowed products`);
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

function checkMinTcb(
  report: SnpReport,
  min: SnpMinTcb | undefined,
  pass: Emit,
  fail: Emit,
  skip: Emit,
): void {
  if (!min) return skip("min-tcb", "no minimum TCB in the policy");
  const t = report.reportedTcb;
  const low = (["bootloader", "tee", "snp", "microcode", "fmc"] as const).filter((k) => {
    if (min[k] === undefined) return false;
    if (k === "fmc" && t.fmc === undefined) return false; // not part of the pre-Turin TCB
    return (t[k] ?? 0) < (min[k] as number);
  });
  if (low.length) fail("min-tcb", `REPORTED_TCB below the minimum in ${low.join(", ")}`);
  else pass("min-tcb", `REPORTED_TCB ${formatTcb(t)} meets the minimum`);
}

function checkAllowList(
  name: string,
  value: Uint8Array,
  allowed: readonly string[] | undefined,
  pass: Emit,
  fail: Emit,
  skip: Emit,
): void {
  if (!allowed) return skip(name, "no allow-list in the policy");
  const v = hex(value);
  if (allowed.some((a) => a.toLowerCase() === v)) pass(name, "value is in the allow-list");
  else fail(name, "value is not in the allow-list");
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
  const issues: FieldIssue[] = [];
  if (!(options?.at instanceof Date) || Number.isNaN(options.at.getTime())) {
    issues.push({ path: "at", rule: "must be a valid Date" });
  }
  const rd = options?.expectedReportData;
  if (rd !== undefined && (!(rd instanceof Uint8Array) || rd.length !== 64)) {
    issues.push({ path: "expectedReportData", rule: "must be exactly 64 bytes" });
  }
  const p = options?.policy ?? {};
  const hexList = (list: readonly string[] | undefined, bytes: number, path: string) => {
    if (list === undefined) return;
    if (!Array.isArray(list)) return issues.push({ path, rule: "must be an array of hex strings" });
    list.forEach((v, i) => {
      if (typeof v !== "string" || !new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`).test(v)) {
        issues.push({ path: `${path}.${i}`, rule: `must be ${bytes} bytes of hex` });
      }
    });
  };
  hexList(p.measurements, 48, "policy.measurements");
  hexList(p.hostData, 32, "policy.hostData");
  if (p.maxVmpl !== undefined && !(Number.isInteger(p.maxVmpl) && p.maxVmpl >= 0 && p.maxVmpl <= 3)) {
    issues.push({ path: "policy.maxVmpl", rule: "must be an integer 0..3" });
  }
  if (p.minTcb !== undefined) {
    for (const [k, v] of Object.entries(p.minTcb)) {
      if (!["bootloader", "tee", "snp", "microcode", "fmc"].includes(k)) {
        issues.push({ path: `policy.minTcb.${k}`, rule: "unknown TCB component" });
      } else if (v !== undefined && !(Number.isInteger(v) && v >= 0 && v <= 255)) {
        issues.push({ path: `policy.minTcb.${k}`, rule: "must be an integer 0..255" });
      }
    }
  }
  if (p.allowedProducts !== undefined) {
    if (!Array.isArray(p.allowedProducts))
      issues.push({ path: "policy.allowedProducts", rule: "must be an array" });
    else
      p.allowedProducts.forEach((v, i) => {
        if (!PRODUCTS.includes(v))
          issues.push({ path: `policy.allowedProducts.${i}`, rule: "must be Milan, Genoa or Turin" });
      });
  }
  if (issues.length) throw new ValidationError("SNP verification options", issues);
}

/** JSON-serialisable claims: every parsed field, hex for bytes. */
export function snpClaims(
  report: SnpReport,
  ext?: VekExtensions,
  product?: AmdProduct,
  signer?: "vcek" | "vlek",
): Record<string, unknown> {
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
