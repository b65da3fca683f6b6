import { createHash } from "node:crypto";
import { ValidationError } from "../../errors.js";
import {
  CertificateFormatError,
  describeChainFailure,
  parseCertificate,
  pemToDerList,
  verifyCertificateChain,
  verifyEcdsaRaw,
  type ParsedCertificate,
} from "../pki/index.js";
import { CheckList, fail, pass, skip, warn, type Outcome } from "../checks.js";
import type { NvidiaVerification } from "../types.js";
import { nvidiaDeviceRoot } from "./device-root.js";
import { parseNvidiaEvidence, type NvidiaEvidence } from "./evidence.js";
import { fwidFromCertificate, TCG_DICE_TCBINFO_OID } from "./fwid.js";
import { NVDEC_DISABLED, NVDEC_ENABLED, type NvidiaOpaqueData } from "./opaque.js";
import { MAX_TRAILING_BYTES } from "./spdm.js";

export interface NvidiaVerifyOptions {
  /** Validation time for the device certificate chain. Default: now. */
  at?: Date;
}

/** The GPU's SPDM evidence claims (bytes as hex); the named opaque fields as the parser reads them. */
export interface NvidiaClaims extends Omit<NvidiaOpaqueData, "nvdec0Status" | "protectedPcieStatus" | "raw"> {
  spdmVersion: "1.1";
  /** The requester's (verifier's) nonce: the binding field. */
  nonce: string;
  responderNonce: string;
  slotId: number;
  measurementCount: number;
  /** Measurement block values by SPDM index. */
  measurements: Record<string, string>;
  validationTime: string;
  /** Every opaque field by type, hex. */
  opaque: Record<string, string>;
  /** "enabled", "disabled", or the raw byte as hex. */
  nvdec0Status?: string;
  protectedPcieStatus?: string;
  measurementCounts?: number[];
  signingCertificate?: {
    subject: string;
    issuer: string;
    notBefore: string;
    notAfter: string;
    sha256: string;
  };
}

/** Longest accepted device chain in PEM text; a Hopper chain is about 5 KB. */
const MAX_CHAIN_PEM_BYTES = 64 * 1024;
const MAX_CHAIN_CERTS = 8;

/**
 * Authenticate NVIDIA H100 GPU evidence the way nvtrust's local verifier and trustee do, offline:
 * SPDM structure, ECDSA P-384 signature over the GET_MEASUREMENTS transcript with the leaf key,
 * the device chain to the pinned NVIDIA Device Identity CA at `at`, and the leaf FWID against the
 * report's FWID. The request nonce, reference measurements (RIMs) and firmware versions are the
 * validator's. Revocation (OCSP) needs NVIDIA's online service and is reported as skipped.
 */
export function verifyNvidiaGpuEvidence(
  evidence: Uint8Array | string,
  certChainPem: string | Uint8Array,
  options: NvidiaVerifyOptions = {},
): NvidiaVerification {
  const opts = validateOptions(options);
  const report = parseNvidiaEvidence(evidence);
  const at = opts.at ?? new Date();
  const list = new CheckList();
  const run = (name: string, fn: () => Outcome) => list.run(name, fn);

  list.add(
    "spdm-structure",
    pass(`SPDM 1.1 GET_MEASUREMENTS exchange with ${report.response.blocks.length} measurement blocks`),
  );

  const trailing = report.response.trailing.length;
  if (trailing > 0) {
    list.add(
      "trailing-bytes",
      warn(
        `${trailing} unsigned byte(s) follow the SPDM signature (at most ${MAX_TRAILING_BYTES} accepted); ignored, never interpreted`,
      ),
    );
  }

  let chain: Uint8Array[] = [];
  let leaf: ParsedCertificate | undefined;
  run("certificate-chain", () => {
    chain = readChain(certChainPem);
    // The leaf first: the signature and FWID checks use it even when its chain is incomplete.
    if (chain.length > 0) leaf = parseCertificate(chain[0]);
    // trustee: a chain needs at least the signing certificate and the root.
    if (chain.length < 2) return fail("chain must hold at least the signing certificate and the root");
    const result = verifyCertificateChain({
      chain,
      trustedRoots: [nvidiaDeviceRoot().der],
      at,
      understoodCriticalExtensions: [TCG_DICE_TCBINFO_OID],
    });
    if (!result.ok) return fail(describeChainFailure(result.failure));
    return pass(
      `chain of ${result.path.length} to the pinned NVIDIA Device Identity CA valid at ${at.toISOString()}`,
    );
  });

  run("signature", () => {
    if (!leaf) return fail("no usable signing (leaf) certificate");
    if (leaf.keyUsage && !leaf.keyUsage.digitalSignature) return fail("leaf keyUsage lacks digitalSignature");
    const ok = verifyEcdsaRaw({
      publicKey: leaf.publicKey,
      curve: "P-384",
      hash: "sha384",
      data: report.signedBytes,
      signature: report.response.signature,
    });
    return ok
      ? pass("ECDSA P-384/SHA-384 over GET_MEASUREMENTS request || response verifies with the leaf key")
      : fail("signature over the SPDM transcript does not verify with the leaf certificate's key");
  });

  run("fwid-binding", () => {
    if (!leaf) return fail("no usable signing (leaf) certificate");
    const fromCert = fwidFromCertificate(leaf);
    if (!fromCert.ok) return fail(fromCert.reason);
    if (report.opaque.fwid === undefined) return fail("report carries no FWID opaque field");
    return fromCert.fwid === report.opaque.fwid
      ? pass("leaf certificate FWID equals the report's FWID")
      : fail("leaf certificate FWID differs from the report's FWID");
  });

  list.add("revocation", skip("OCSP status of the device chain needs NVIDIA's online OCSP service"));

  return {
    kind: "nvidia",
    trusted: list.trusted,
    checks: list.checks,
    claims: claimsOf(report, leaf, at),
    measurement: createHash("sha384").update(report.response.measurementRecord).digest("hex"),
    reportData: new Uint8Array(report.request.nonce),
    // The SPDM evidence carries no debug / devtools indicator for the GPU.
    debug: false,
    signature: Buffer.from(report.response.signature).toString("hex"),
  };
}

function readChain(pem: string | Uint8Array): Uint8Array[] {
  const size = typeof pem === "string" ? Buffer.byteLength(pem) : pem.length;
  if (size > MAX_CHAIN_PEM_BYTES) throw new CertificateFormatError("certificate chain PEM is too large");
  // PEM text, or PEM text in base64 (as nvtrust's SDK ships the chain).
  let text = typeof pem === "string" ? pem : Buffer.from(pem).toString("latin1");
  if (!text.includes("-----BEGIN")) {
    const b64 = text.replace(/\s+/g, "");
    if (/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) text = Buffer.from(b64, "base64").toString("latin1");
  }
  const certs = pemToDerList(text);
  if (certs.length > MAX_CHAIN_CERTS)
    throw new CertificateFormatError("certificate chain has too many certificates");
  return certs;
}

function claimsOf(report: NvidiaEvidence, leaf: ParsedCertificate | undefined, at: Date): NvidiaClaims {
  const measurements: Record<string, string> = {};
  for (const b of report.response.blocks) measurements[b.index] = Buffer.from(b.value).toString("hex");
  const o = report.opaque;
  const claims: NvidiaClaims = {
    spdmVersion: "1.1",
    nonce: Buffer.from(report.request.nonce).toString("hex"),
    responderNonce: Buffer.from(report.response.nonce).toString("hex"),
    slotId: report.request.slotId,
    measurementCount: report.response.blocks.length,
    measurements,
    validationTime: at.toISOString(),
    opaque: o.raw,
  };
  const named: Omit<NvidiaClaims, keyof typeof claims> = {
    driverVersion: o.driverVersion,
    vbiosVersion: o.vbiosVersion,
    fwid: o.fwid,
    chipSku: o.chipSku,
    chipSkuMod: o.chipSkuMod,
    project: o.project,
    projectSku: o.projectSku,
    projectSkuMod: o.projectSkuMod,
    boardId: o.boardId,
    gpuInfo: o.gpuInfo,
    cprInfo: o.cprInfo,
    nvdec0Status: statusName(o.nvdec0Status),
    // Reported as the raw byte: its encoding is not documented the way NVDEC0's is.
    protectedPcieStatus: o.protectedPcieStatus === undefined ? undefined : byteHex(o.protectedPcieStatus),
    measurementCounts: o.measurementCounts,
  };
  for (const [k, v] of Object.entries(named)) if (v !== undefined) Object.assign(claims, { [k]: v });
  if (leaf) {
    claims.signingCertificate = {
      subject: leaf.subject,
      issuer: leaf.issuer,
      notBefore: leaf.notBefore.toISOString(),
      notAfter: leaf.notAfter.toISOString(),
      sha256: leaf.fingerprint256,
    };
  }
  return claims;
}

function statusName(value: number | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value === NVDEC_ENABLED) return "enabled";
  if (value === NVDEC_DISABLED) return "disabled";
  return byteHex(value);
}

function byteHex(value: number): string {
  return `0x${value.toString(16).padStart(2, "0")}`;
}

function validateOptions(options: NvidiaVerifyOptions): NvidiaVerifyOptions {
  const at = options.at;
  if (at === undefined || (at instanceof Date && !Number.isNaN(at.getTime()))) return { at };
  throw new ValidationError("NVIDIA verification options", [{ path: "at", rule: "must be a valid Date" }]);
}
