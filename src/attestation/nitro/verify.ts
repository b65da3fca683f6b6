import { ValidationError } from "../../errors.js";
import {
  describeChainFailure,
  parseCertificate,
  verifyCertificateChain,
  type ParsedCertificate,
} from "../pki/index.js";
import { CheckList, fail, pass, warn, type Outcome } from "../checks.js";
import type { NitroVerification } from "../types.js";
import { awsNitroRoot } from "./aws-root.js";
import { verifyCoseSign1Es384 } from "./cose-sign1.js";
import { parseNitroDocument, type NitroDocument } from "./document.js";

export interface NitroVerifyOptions {
  /**
   * Validation time for the certificate chain. A Date, or "document" to use the document's own
   * timestamp (for recorded documents: the Nitro leaf certificate lives only ~3 hours).
   * Default: now.
   */
  at?: Date | "document";
}

/** An attestation document's claims (bytes as hex). */
export interface NitroClaims {
  moduleId: string;
  digest: string;
  /** The NSM's signed timestamp, milliseconds since the Unix epoch, and as ISO 8601. */
  timestampMs: number;
  timestamp: string;
  validationTime: string;
  /** PCR values by index. */
  pcrs: Record<string, string>;
  cabundleLength: number;
  certificate?: { subject: string; issuer: string; notBefore: string; notAfter: string; sha256: string };
  rootFingerprint?: string;
  publicKey?: string;
  userData?: string;
  nonce?: string;
}

const DEBUG_PCRS = [0, 1, 2] as const;

/**
 * Authenticate an AWS Nitro Enclaves attestation document: COSE ES384 signature, certificate chain
 * to the pinned AWS root at the validation time, and the SHA384 PCR bank. Debug mode, PCR
 * allow-lists, the nonce binding and the document's age are the validator's. Malformed documents
 * throw EvidenceFormatError; invalid options throw ValidationError; everything else is reported as
 * checks, and `trusted` is true only when every check that ran passed.
 */
export function verifyNitroDocument(
  bytes: Uint8Array | string,
  options: NitroVerifyOptions = {},
): NitroVerification {
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

  run("digest", () => {
    if (doc.digest !== "SHA384") return fail("digest must be SHA384");
    if (![...doc.pcrs.values()].every((v) => v.length === 48))
      return fail("PCR length does not match SHA384");
    // The debug indicator (validated by the policy) is read from these three.
    const missing = DEBUG_PCRS.filter((i) => !doc.pcrs.has(i));
    if (missing.length) return fail(`PCR${missing.join(", PCR")} missing`);
    return pass("SHA384 PCR bank");
  });

  const claims = claimsOf(doc, leaf, at, rootFingerprint);
  const result: NitroVerification = {
    kind: "nitro",
    trusted: list.trusted,
    checks: list.checks,
    claims,
    measurement: claims.pcrs["0"] ?? "",
    // --debug-mode enclaves report all-zero PCR0, PCR1 and PCR2.
    debug: DEBUG_PCRS.some((i) => doc.pcrs.get(i) !== undefined && isAllZero(doc.pcrs.get(i)!)),
    signature: hexOf(doc.cose.signature),
  };
  if (doc.nonce !== undefined) result.reportData = new Uint8Array(doc.nonce);
  return result;
}

function claimsOf(
  doc: NitroDocument,
  leaf: ParsedCertificate | undefined,
  at: Date,
  rootFingerprint: string | undefined,
): NitroClaims {
  const pcrs: Record<string, string> = {};
  for (const [index, value] of [...doc.pcrs.entries()].sort((a, b) => a[0] - b[0]))
    pcrs[index] = hexOf(value);
  const claims: NitroClaims = {
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

function validateOptions(options: NitroVerifyOptions): NitroVerifyOptions {
  const at = options.at;
  if (at === undefined || at === "document" || (at instanceof Date && !Number.isNaN(at.getTime()))) {
    return { at };
  }
  throw new ValidationError("Nitro verification options", [
    { path: "at", rule: 'must be a valid Date or "document"' },
  ]);
}

function isAllZero(bytes: Uint8Array): boolean {
  return bytes.every((b) => b === 0);
}

function hexOf(bytes: Uint8Array | undefined): string {
  return bytes ? Buffer.from(bytes).toString("hex") : "";
}
