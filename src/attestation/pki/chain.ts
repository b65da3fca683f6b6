import { AttestationError } from "../types.js";
import {
  bytesEqual,
  EXTENSION_OID,
  normalizeFingerprint,
  parseCertificate,
  type CertificateInput,
  type ParsedCertificate,
} from "./certificate.js";
import { CertificateFormatError } from "./errors.js";
import { publicKeyProblem, verifySignature } from "./signature.js";

/** A pinned trust anchor: the certificate itself, or the lowercase/colon hex SHA-256 of its DER. */
export type TrustedRoot = CertificateInput | string;

/** The individual checks a chain walk performs; a failure names exactly one. */
export type ChainCheck =
  | "input"
  | "parse"
  | "public-key"
  | "name-chaining"
  | "signature"
  | "validity"
  | "basic-constraints"
  | "key-usage"
  | "path-length"
  | "critical-extension"
  | "revocation"
  | "root-pinning";

export interface ChainFailure {
  check: ChainCheck;
  /** Position of the offending certificate in the path, leaf = 0; the appended pinned root is chain.length. */
  index: number;
  /** Subject of that certificate when it parsed (diagnostic). */
  subject?: string;
  detail: string;
}

export type RevocationResult = { ok: true } | { ok: false; detail: string };

/**
 * Revocation hook (e.g. CRLs, src/attestation/pki/crl.ts): called for every certificate except the
 * anchor, with its issuer, after its signature and validity were checked.
 */
export type RevocationCheck = (
  cert: ParsedCertificate,
  issuer: ParsedCertificate,
  index: number,
) => RevocationResult;

export interface ChainVerificationOptions {
  /** Leaf first; may or may not end with the root. DER bytes or X.509 objects. */
  chain: readonly CertificateInput[];
  /** Pinned anchors. A root carried in `chain` is trusted only if its fingerprint is pinned here. */
  trustedRoots: readonly TrustedRoot[];
  /** Validation time: every certificate in the path must be valid at this instant. */
  at: Date;
  /** Critical extension OIDs the caller handles itself (e.g. vendor DICE extensions). */
  understoodCriticalExtensions?: readonly string[];
  checkRevocation?: RevocationCheck;
  /** Longest accepted path including the anchor (default 8). */
  maxPathLength?: number;
}

export type ChainVerification =
  | {
      ok: true;
      /** The validated path, leaf first, ending with the pinned anchor. */
      path: ParsedCertificate[];
      leaf: ParsedCertificate;
      root: ParsedCertificate;
      rootFingerprint: string;
    }
  | { ok: false; failure: ChainFailure };

// Extensions whose semantics the walk enforces, or which only narrow use and are safe to accept.
const UNDERSTOOD_CRITICAL = new Set<string>([
  EXTENSION_OID.basicConstraints,
  EXTENSION_OID.keyUsage,
  EXTENSION_OID.extendedKeyUsage,
  EXTENSION_OID.subjectAltName,
]);

/**
 * Validates a certificate path to a pinned root (RFC 5280 path validation, minus policy and
 * name constraints, which no TEE vendor chain uses; a critical nameConstraints therefore fails).
 * Returns a typed failure naming the link and the check rather than throwing.
 */
export function verifyCertificateChain(options: ChainVerificationOptions): ChainVerification {
  const fail = (
    check: ChainCheck,
    index: number,
    detail: string,
    cert?: ParsedCertificate,
  ): ChainVerification => ({
    ok: false,
    failure: { check, index, detail, ...(cert ? { subject: cert.subject } : {}) },
  });
  const { chain, at } = options;
  if (!(at instanceof Date) || Number.isNaN(at.getTime()))
    return fail("input", -1, "validation time is not a date");
  if (chain.length === 0) return fail("input", -1, "certificate chain is empty");
  const maxPath = options.maxPathLength ?? 8;

  const parsed: ParsedCertificate[] = [];
  for (let i = 0; i < chain.length; i++) {
    try {
      parsed.push(parseCertificate(chain[i]));
    } catch (e) {
      return fail(
        "parse",
        i,
        e instanceof CertificateFormatError ? e.message : "certificate could not be parsed",
      );
    }
  }

  let pins: Set<string>;
  const anchors: ParsedCertificate[] = [];
  try {
    pins = new Set<string>();
    for (const root of options.trustedRoots) {
      if (typeof root === "string") {
        pins.add(normalizeFingerprint(root));
      } else {
        const cert = parseCertificate(root);
        pins.add(cert.fingerprint256);
        anchors.push(cert);
      }
    }
  } catch (e) {
    return fail("input", -1, `trusted root: ${e instanceof Error ? e.message : "unparseable"}`);
  }
  if (pins.size === 0) return fail("input", -1, "no trusted roots were given");

  // The path must end at a pinned certificate: either the chain's own last certificate (only if
  // its fingerprint is pinned) or a pinned certificate that issued it.
  const path = [...parsed];
  const last = parsed[parsed.length - 1];
  if (!pins.has(last.fingerprint256)) {
    const issuer = anchors.find(
      (a) =>
        bytesEqual(a.subjectDer, last.issuerDer) &&
        verifySignature(last.signatureAlgorithm, a.publicKey, last.tbs, last.signature),
    );
    if (!issuer) {
      const selfIssued = bytesEqual(last.subjectDer, last.issuerDer);
      return fail(
        "root-pinning",
        parsed.length - 1,
        selfIssued
          ? "the chain ends in a root certificate that is not pinned"
          : "no pinned root issued the last certificate in the chain",
        last,
      );
    }
    path.push(issuer);
  }
  if (path.length > maxPath) return fail("input", -1, `path longer than ${maxPath} certificates`);

  for (let i = 0; i < path.length; i++) {
    const cert = path[i];
    const isAnchor = i === path.length - 1;
    const keyProblem = publicKeyProblem(cert.publicKey);
    if (keyProblem) return fail("public-key", i, keyProblem, cert);

    if (!isAnchor) {
      const issuer = path[i + 1];
      if (!bytesEqual(cert.issuerDer, issuer.subjectDer)) {
        return fail("name-chaining", i, "issuer name does not equal the next certificate's subject", cert);
      }
      if (!verifySignature(cert.signatureAlgorithm, issuer.publicKey, cert.tbs, cert.signature)) {
        return fail("signature", i, "signature does not verify with the issuer's public key", cert);
      }
    } else if (bytesEqual(cert.issuerDer, cert.subjectDer)) {
      // A pinned self-signed root must carry a valid self-signature (guards a mis-pinned non-root).
      if (!verifySignature(cert.signatureAlgorithm, cert.publicKey, cert.tbs, cert.signature)) {
        return fail("signature", i, "self-signature of the pinned root does not verify", cert);
      }
    }

    if (at < cert.notBefore)
      return fail("validity", i, "certificate is not yet valid at the validation time", cert);
    if (at > cert.notAfter)
      return fail("validity", i, "certificate has expired at the validation time", cert);

    if (i > 0) {
      if (!cert.basicConstraints?.ca) {
        return fail("basic-constraints", i, "issuing certificate lacks basicConstraints cA=TRUE", cert);
      }
      if (cert.keyUsage && !cert.keyUsage.keyCertSign) {
        return fail("key-usage", i, "issuing certificate's keyUsage lacks keyCertSign", cert);
      }
      // Intermediates between this CA and the leaf (RFC 5280 6.1.4 (l)/(m); self-issued are rare here).
      const below = i - 1;
      const pathLength = cert.basicConstraints.pathLength;
      if (pathLength !== undefined && below > pathLength) {
        return fail("path-length", i, "basicConstraints pathLenConstraint exceeded", cert);
      }
    }

    for (const ext of cert.extensions) {
      if (
        ext.critical &&
        !UNDERSTOOD_CRITICAL.has(ext.oid) &&
        !options.understoodCriticalExtensions?.includes(ext.oid)
      ) {
        return fail("critical-extension", i, `unrecognised critical extension ${ext.oid}`, cert);
      }
    }

    if (!isAnchor && options.checkRevocation) {
      const r = options.checkRevocation(cert, path[i + 1], i);
      if (!r.ok) return fail("revocation", i, r.detail, cert);
    }
  }

  const root = path[path.length - 1];
  return { ok: true, path, leaf: path[0], root, rootFingerprint: root.fingerprint256 };
}

/** Like verifyCertificateChain, but throws AttestationError (check "certificate-chain.<check>"). */
export function assertCertificateChain(
  options: ChainVerificationOptions,
): Extract<ChainVerification, { ok: true }> {
  const r = verifyCertificateChain(options);
  if (!r.ok) {
    throw new AttestationError(
      `certificate-chain.${r.failure.check}`,
      `certificate ${r.failure.index}: ${r.failure.detail}`,
    );
  }
  return r;
}

/** One-line description of a chain failure for a CheckResult detail. */
export function describeChainFailure(failure: ChainFailure): string {
  const who = failure.subject ? ` (${failure.subject})` : "";
  return failure.index >= 0
    ? `${failure.check} failed at certificate ${failure.index}${who}: ${failure.detail}`
    : `${failure.check}: ${failure.detail}`;
}
