import { createHash, timingSafeEqual } from "node:crypto";
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
import type { VerificationResult } from "../types.js";
import { nvidiaDeviceRoot } from "./device-root.js";
import { parseNvidiaEvidence, type NvidiaEvidence } from "./evidence.js";
import { fwidFromCertificate, TCG_DICE_TCBINFO_OID } from "./fwid.js";
import { NVDEC_DISABLED, NVDEC_ENABLED } from "./opaque.js";
import { compareMeasurements, type NvidiaReferenceMeasurements } from "./reference.js";
import { MAX_TRAILING_BYTES, NONCE_BYTES } from "./spdm.js";

export interface NvidiaGpuPolicy {
  /** Fail (rather than skip) the measurement check when no reference values are given. */
  requireReferenceMeasurements?: boolean;
  /** Accepted driver versions as the report states them, e.g. "550.90.07". */
  driverVersions?: readonly string[];
  /** Accepted VBIOS versions, e.g. "96.00.9f.00.01" (compared case-insensitively). */
  vbiosVersions?: readonly string[];
}

export interface NvidiaVerifyOptions {
  /** Validation time for the device certificate chain. Default: now. */
  at?: Date;
  /** The 32-byte nonce (bytes or hex) the verifier sent in GET_MEASUREMENTS. */
  expectedNonce?: Uint8Array | string;
  /** Golden values (e.g. from parseNvidiaRim) for the VBIOS and/or driver. */
  referenceMeasurements?: NvidiaReferenceMeasurements | readonly NvidiaReferenceMeasurements[];
  policy?: NvidiaGpuPolicy;
}

/** Longest accepted device chain in PEM text; a Hopper chain is about 5 KB. */
const MAX_CHAIN_PEM_BYTES = 64 * 1024;
const MAX_CHAIN_CERTS = 8;

/**
 * Verify NVIDIA H100 GPU evidence the way nvtrust's local verifier and trustee do, offline:
 * SPDM structure, ECDSA P-384 signature over the GET_MEASUREMENTS transcript with the leaf key,
 * the device chain to the pinned NVIDIA Device Identity CA at `at`, the leaf FWID against the
 * report's FWID, the request nonce, and reference measurements when given. Revocation (OCSP)
 * needs NVIDIA's online service and is reported as skipped.
 */
export function verifyNvidiaGpuEvidence(
  evidence: Uint8Array | string,
  certChainPem: string | Uint8Array,
  options: NvidiaVerifyOptions = {},
): VerificationResult {
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

  run("nonce", () => {
    if (opts.expectedNonce === undefined) return skip("no expected nonce given; freshness not established");
    const actual = report.request.nonce;
    return actual.length === opts.expectedNonce.length && timingSafeEqual(actual, opts.expectedNonce)
      ? pass("request nonce matches")
      : fail("request nonce does not match the expected nonce");
  });

  run("firmware-versions", () => {
    const p = opts.policy;
    if (!p?.driverVersions && !p?.vbiosVersions) return skip("no driver/VBIOS allow-list given");
    const bad: string[] = [];
    if (p.driverVersions && !p.driverVersions.includes(report.opaque.driverVersion ?? "")) bad.push("driver");
    const vbios = report.opaque.vbiosVersion?.toLowerCase() ?? "";
    if (p.vbiosVersions && !p.vbiosVersions.some((v) => v.toLowerCase() === vbios)) bad.push("VBIOS");
    return bad.length ? fail(`${bad.join(" and ")} version not in the allow-list`) : pass("versions allowed");
  });

  const references = opts.referenceMeasurements;
  run("reference-versions", () => {
    if (references.length === 0) return skip("no reference measurements given");
    const wrong: string[] = [];
    for (const ref of references) {
      if (ref.version === undefined) continue;
      const actual = ref.component === "vbios" ? report.opaque.vbiosVersion : report.opaque.driverVersion;
      if (actual === undefined || actual.toLowerCase() !== ref.version.toLowerCase())
        wrong.push(ref.component);
    }
    return wrong.length
      ? fail(`reference ${wrong.join(" and ")} version does not match the report`)
      : pass("reference versions match the report");
  });

  run("measurements", () => {
    if (references.length === 0) {
      return opts.policy?.requireReferenceMeasurements
        ? fail("reference measurements are required by policy but none were given")
        : skip("no reference measurements (RIM) given; fetching RIMs needs NVIDIA's RIM service");
    }
    const outcome = compareMeasurements(report.response.blocks, references, report.opaque.nvdec0Status);
    if (!outcome.ok) return fail(outcome.reason);
    const note = outcome.skippedNvdec ? " (index 36 skipped: NVDEC0 disabled)" : "";
    return pass(`${outcome.compared} active reference measurements match${note}`);
  });

  run("reference-authenticity", () => {
    if (references.length === 0) return skip("no reference measurements given");
    const unauthenticated = references.filter((r) => !r.authenticated).map((r) => r.component);
    return unauthenticated.length
      ? skip(`${unauthenticated.join(" and ")} reference values supplied without a verified RIM signature`)
      : pass("reference values come from RIMs whose signature and chain verified");
  });

  list.add("revocation", skip("OCSP status of the device chain needs NVIDIA's online OCSP service"));

  const result: VerificationResult = {
    kind: "nvidia",
    trusted: list.trusted,
    checks: list.checks,
    claims: claimsOf(report, leaf, at),
    measurement: createHash("sha384").update(report.response.measurementRecord).digest("hex"),
    reportData: new Uint8Array(report.request.nonce),
    // The SPDM evidence carries no debug / devtools indicator for the GPU.
    debug: false,
  };
  return result;
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

function claimsOf(
  report: NvidiaEvidence,
  leaf: ParsedCertificate | undefined,
  at: Date,
): Record<string, unknown> {
  const measurements: Record<string, string> = {};
  for (const b of report.response.blocks) measurements[b.index] = Buffer.from(b.value).toString("hex");
  const o = report.opaque;
  const claims: Record<string, unknown> = {
    spdmVersion: "1.1",
    nonce: Buffer.from(report.request.nonce).toString("hex"),
    responderNonce: Buffer.from(report.response.nonce).toString("hex"),
    slotId: report.request.slotId,
    measurementCount: report.response.blocks.length,
    measurements,
    validationTime: at.toISOString(),
    opaque: o.raw,
  };
  const named: Record<string, unknown> = {
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
  for (const [k, v] of Object.entries(named)) if (v !== undefined) claims[k] = v;
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

interface ValidOptions {
  at?: Date;
  expectedNonce?: Uint8Array;
  referenceMeasurements: readonly NvidiaReferenceMeasurements[];
  policy?: NvidiaGpuPolicy;
}

function validateOptions(options: NvidiaVerifyOptions): ValidOptions {
  const issues: { path: string; rule: string }[] = [];
  const out: ValidOptions = { referenceMeasurements: [] };
  if (options.at !== undefined) {
    if (options.at instanceof Date && !Number.isNaN(options.at.getTime())) out.at = options.at;
    else issues.push({ path: "at", rule: "must be a valid Date" });
  }
  if (options.expectedNonce !== undefined) {
    const n = options.expectedNonce;
    const bytes =
      n instanceof Uint8Array
        ? n
        : typeof n === "string" && /^[0-9a-fA-F]*$/.test(n) && n.length % 2 === 0
          ? new Uint8Array(Buffer.from(n, "hex"))
          : undefined;
    if (!bytes || bytes.length !== NONCE_BYTES) {
      issues.push({
        path: "expectedNonce",
        rule: `must be ${NONCE_BYTES} bytes (or ${2 * NONCE_BYTES} hex digits)`,
      });
    } else out.expectedNonce = bytes;
  }
  const refs = options.referenceMeasurements;
  if (refs !== undefined) {
    const list = (Array.isArray(refs) ? refs : [refs]) as readonly NvidiaReferenceMeasurements[];
    list.forEach((ref, i) => {
      const path = `referenceMeasurements[${i}]`;
      if (ref?.component !== "vbios" && ref?.component !== "driver") {
        issues.push({ path: `${path}.component`, rule: 'must be "vbios" or "driver"' });
      }
      if (!Array.isArray(ref?.measurements)) {
        issues.push({ path: `${path}.measurements`, rule: "must be an array" });
        return;
      }
      ref.measurements.forEach((m, j) => {
        const okIndex = Number.isInteger(m?.index) && m.index >= 1 && m.index <= 254;
        const okSize = Number.isInteger(m?.size) && m.size >= 1 && m.size <= 64;
        const okAlts =
          Array.isArray(m?.alternatives) &&
          m.alternatives.length > 0 &&
          m.alternatives.every(
            (a: unknown) => typeof a === "string" && /^[0-9a-fA-F]+$/.test(a) && a.length === 2 * m.size,
          );
        if (!okIndex || !okSize || !okAlts || typeof m.active !== "boolean") {
          issues.push({
            path: `${path}.measurements[${j}]`,
            rule: "needs index 1..254, size 1..64, boolean active and hex alternatives of that size",
          });
        }
      });
    });
    out.referenceMeasurements = list;
  }
  if (options.policy !== undefined) {
    const p = options.policy;
    for (const key of ["driverVersions", "vbiosVersions"] as const) {
      const v = p[key];
      if (v !== undefined && (!Array.isArray(v) || v.some((s) => typeof s !== "string"))) {
        issues.push({ path: `policy.${key}`, rule: "must be an array of strings" });
      }
    }
    out.policy = p;
  }
  if (issues.length) throw new ValidationError("NVIDIA verification options", issues);
  return out;
}
