import { timingSafeEqual } from "node:crypto";
import { ValidationError } from "../../errors.js";
import {
  describeChainFailure,
  parseCertificate,
  verifyCertificateChain,
  type ParsedCertificate,
} from "../pki/index.js";
import { CheckList, fail, pass, skip, warn, type Outcome } from "../checks.js";
import type { VerificationResult } from "../types.js";
import { awsNitroRoot } from "./aws-root.js";
import { verifyCoseSign1Es384 } from "./cose-sign1.js";
import { parseNitroDocument, type NitroDocument } from "./document.js";

/** Allow-lists of hex PCR values by index; a document passes when each listed PCR is in its list. */
export type NitroPcrPolicy = Partial<Record<number, readonly string[]>>;

export interface NitroPolicy {
  pcrs?: NitroPcrPolicy;
  /** Accept enclaves run with --debug-mode (PCR0/1/2 all zero). Default false. */
  allowDebug?: boolean;
}

export interface NitroVerifyOptions {
  /**
   * Validation time for the certificate chain. A Date, or "document" to use the document's own
   * timestamp (for recorded documents: the Nitro leaf certificate lives only ~3 hours).
   * Default: now.
   */
  at?: Date | "document";
  /** When set (and `at` is a Date), the document must be at most this old at `at`. */
  maxAgeMs?: number;
  policy?: NitroPolicy;
  /** Bytes (or hex) the document's `nonce` must equal. */
  expectedNonce?: Uint8Array | string;
  /** Bytes (or hex) the document's `user_data` must equal. */
  expectedUserData?: Uint8Array | string;
  /** Bytes (or hex) the document's `public_key` must equal. */
  expectedPublicKey?: Uint8Array | string;
}

/** Tolerated clock difference between the NSM and the verifier for the freshness check. */
export const NITRO_CLOCK_SKEW_MS = 5 * 60 * 1000;
const DEBUG_PCRS = [0, 1, 2] as const;

/**
 * Verify an AWS Nitro Enclaves attestation document: COSE ES384 signature, certificate chain to
 * the pinned AWS root at the validation time, digest, debug mode, PCR allow-lists and the
 * nonce / user_data / public_key bindings. Malformed documents throw EvidenceFormatError; invalid
 * options throw ValidationError; everything else is reported as checks, and `trusted` is true
 * only when every check that ran passed.
 */
export function verifyNitroDocument(
  bytes: Uint8Array | string,
  options: NitroVerifyOptions = {},
): VerificationResult {
  const opts = validateOptions(options);
  const doc = parseNitroDocument(bytes);
  const list = new CheckList();
  const run = (name: string, fn: () => Outcome) => list.run(name, fn);

  const at = opts.at === "document" ? new Date(doc.timestamp) : (opts.at ?? new Date());

  if (doc.cose.unprotectedEntries > 0) {
    list.add(
      "unprotected-header",
      warn(
        `the unsigned COSE unprotected header holds ${doc.cose.unprotectedEntries} parameter(s); ignored, never interpreted`,
      ),
    );
  }

  let leaf: ParsedCertificate | undefined;
  run("leaf-certificate", () => {
    leaf = parseCertificate(doc.certificate);
    const key = leaf.publicKey;
    if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "secp384r1") {
      return fail("leaf public key is not ECDSA P-384 as ES384 requires");
    }
    if (leaf.basicConstraints?.ca) return fail("leaf certificate is a CA certificate");
    if (leaf.keyUsage && !leaf.keyUsage.digitalSignature) return fail("leaf keyUsage lacks digitalSignature");
    return pass("ECDSA P-384 end-entity certificate");
  });

  run("cose-signature", () => {
    if (!leaf) return fail("no usable leaf certificate");
    return verifyCoseSign1Es384(doc.cose, leaf.publicKey)
      ? pass("ES384 signature over Sig_structure verifies with the leaf key")
      : fail("ES384 signature does not verify with the leaf certificate's key");
  });

  let rootFingerprint: string | undefined;
  run("certificate-chain", () => {
    // cabundle is root first; the path is leaf, then the bundle reversed. The pinned root is
    // the only anchor: a bundle root is accepted only when byte-identical to it.
    const chain = [doc.certificate, ...[...doc.cabundle].reverse()];
    const result = verifyCertificateChain({ chain, trustedRoots: [awsNitroRoot().der], at });
    if (!result.ok) return fail(describeChainFailure(result.failure));
    rootFingerprint = result.rootFingerprint;
    return pass(`chain of ${result.path.length} to the pinned AWS Nitro root valid at ${at.toISOString()}`);
  });

  run("digest", () =>
    doc.digest !== "SHA384"
      ? fail("digest must be SHA384")
      : [...doc.pcrs.values()].every((v) => v.length === 48)
        ? pass("SHA384 PCR bank")
        : fail("PCR length does not match SHA384"),
  );

  run("freshness", () => {
    if (opts.at === "document") return skip("validated at the document's own timestamp");
    if (opts.maxAgeMs === undefined) return skip("no maxAgeMs given");
    const age = at.getTime() - doc.timestamp;
    if (age < -NITRO_CLOCK_SKEW_MS) return fail("document timestamp is in the future");
    if (age > opts.maxAgeMs) return fail("document is older than maxAgeMs");
    return pass("document timestamp within maxAgeMs");
  });

  const debug = DEBUG_PCRS.some((i) => doc.pcrs.get(i) !== undefined && isAllZero(doc.pcrs.get(i)!));
  run("debug-mode", () => {
    const missing = DEBUG_PCRS.filter((i) => !doc.pcrs.has(i));
    if (missing.length) return fail(`PCR${missing.join(", PCR")} missing`);
    if (!debug) return pass("PCR0, PCR1 and PCR2 are non-zero (production enclave)");
    return opts.policy?.allowDebug
      ? pass("debug-mode enclave (all-zero PCRs) allowed by policy")
      : fail("debug-mode enclave (all-zero PCR0/1/2) is not allowed");
  });

  run("pcr-policy", () => {
    const rules = Object.entries(opts.policy?.pcrs ?? {}).filter(([, list]) => list !== undefined);
    if (rules.length === 0) return skip("no PCR allow-list given");
    const mismatched: string[] = [];
    for (const [index, list] of rules) {
      const value = doc.pcrs.get(Number(index));
      const hex = value ? Buffer.from(value).toString("hex") : undefined;
      if (hex === undefined || !list!.some((allowed) => allowed === hex)) mismatched.push(`PCR${index}`);
    }
    return mismatched.length
      ? fail(`${mismatched.join(", ")} not in the allow-list`)
      : pass(`${rules.map(([i]) => `PCR${i}`).join(", ")} allowed`);
  });

  run("nonce", () => binding(doc.nonce, opts.expectedNonce, "nonce"));
  run("user-data", () => binding(doc.userData, opts.expectedUserData, "user_data"));
  run("public-key", () => binding(doc.publicKey, opts.expectedPublicKey, "public_key"));

  const result: VerificationResult = {
    kind: "nitro",
    trusted: list.trusted,
    checks: list.checks,
    claims: claimsOf(doc, leaf, at, rootFingerprint),
    measurement: hexOf(doc.pcrs.get(0)),
    debug,
  };
  if (doc.nonce !== undefined) result.reportData = new Uint8Array(doc.nonce);
  return result;
}

function binding(actual: Uint8Array | undefined, expected: Uint8Array | undefined, field: string) {
  if (expected === undefined) return skip(`no expected ${field} given`);
  if (actual === undefined) return fail(`document has no ${field}`);
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
    return fail(`${field} does not match the expected value`);
  }
  return pass(`${field} matches`);
}

function claimsOf(
  doc: NitroDocument,
  leaf: ParsedCertificate | undefined,
  at: Date,
  rootFingerprint: string | undefined,
): Record<string, unknown> {
  const pcrs: Record<string, string> = {};
  for (const [index, value] of [...doc.pcrs.entries()].sort((a, b) => a[0] - b[0]))
    pcrs[index] = hexOf(value);
  const claims: Record<string, unknown> = {
    moduleId: doc.moduleId,
    digest: doc.digest,
    timestampMs: doc.timestamp,
    timestamp: new Date(doc.timestamp).toISOString(),
    validationTime: at.toISOString(),
    pcrs,
    cabundleLength: doc.cabundle.length,
  };
  if (leaf) {
    claims.certificate = {
      subject: leaf.subject,
      issuer: leaf.issuer,
      notBefore: leaf.notBefore.toISOString(),
      notAfter: leaf.notAfter.toISOString(),
      sha256: leaf.fingerprint256,
    };
  }
  if (rootFingerprint) claims.rootFingerprint = rootFingerprint;
  if (doc.publicKey) claims.publicKey = hexOf(doc.publicKey);
  if (doc.userData) claims.userData = hexOf(doc.userData);
  if (doc.nonce) claims.nonce = hexOf(doc.nonce);
  return claims;
}

interface ValidOptions {
  at?: Date | "document";
  maxAgeMs?: number;
  policy?: { pcrs?: Record<number, string[]>; allowDebug: boolean };
  expectedNonce?: Uint8Array;
  expectedUserData?: Uint8Array;
  expectedPublicKey?: Uint8Array;
}

function validateOptions(options: NitroVerifyOptions): ValidOptions {
  const issues: { path: string; rule: string }[] = [];
  const out: ValidOptions = {};
  if (options.at !== undefined) {
    if (options.at === "document") out.at = "document";
    else if (options.at instanceof Date && !Number.isNaN(options.at.getTime())) out.at = options.at;
    else issues.push({ path: "at", rule: 'must be a valid Date or "document"' });
  }
  if (options.maxAgeMs !== undefined) {
    if (Number.isFinite(options.maxAgeMs) && options.maxAgeMs >= 0) out.maxAgeMs = options.maxAgeMs;
    else issues.push({ path: "maxAgeMs", rule: "must be a non-negative number" });
  }
  for (const field of ["expectedNonce", "expectedUserData", "expectedPublicKey"] as const) {
    const value = options[field];
    if (value === undefined) continue;
    const bytes = toBytes(value);
    if (bytes === undefined || bytes.length > 1024) {
      issues.push({ path: field, rule: "must be bytes or an even-length hex string of at most 1024 bytes" });
    } else out[field] = bytes;
  }
  if (options.policy !== undefined) {
    const allowDebug = options.policy.allowDebug ?? false;
    if (typeof allowDebug !== "boolean")
      issues.push({ path: "policy.allowDebug", rule: "must be a boolean" });
    const pcrs: Record<number, string[]> = {};
    for (const [key, list] of Object.entries(options.policy.pcrs ?? {})) {
      const index = Number(key);
      if (!/^\d+$/.test(key) || index > 31) {
        issues.push({ path: `policy.pcrs.${key}`, rule: "PCR index must be an integer in [0, 32)" });
        continue;
      }
      if (list === undefined) continue;
      if (!Array.isArray(list) || list.length === 0) {
        issues.push({ path: `policy.pcrs.${key}`, rule: "must be a non-empty array of hex values" });
        continue;
      }
      const values = list.map((v) => (typeof v === "string" ? v.toLowerCase() : ""));
      if (values.some((v) => !/^(?:[0-9a-f]{64}|[0-9a-f]{96}|[0-9a-f]{128})$/.test(v))) {
        issues.push({ path: `policy.pcrs.${key}`, rule: "each value must be 32, 48 or 64 bytes of hex" });
        continue;
      }
      pcrs[index] = values;
    }
    out.policy = { pcrs, allowDebug: allowDebug === true };
  }
  if (issues.length) throw new ValidationError("Nitro verification options", issues);
  return out;
}

function toBytes(value: Uint8Array | string): Uint8Array | undefined {
  if (value instanceof Uint8Array) return value;
  if (typeof value === "string" && /^(?:[0-9a-fA-F]{2})*$/.test(value)) {
    return new Uint8Array(Buffer.from(value, "hex"));
  }
  return undefined;
}

function isAllZero(bytes: Uint8Array): boolean {
  return bytes.every((b) => b === 0);
}

function hexOf(bytes: Uint8Array | undefined): string {
  return bytes ? Buffer.from(bytes).toString("hex") : "";
}
