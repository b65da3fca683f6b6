import { constants, createPublicKey, verify, type KeyObject } from "node:crypto";
import { CertificateFormatError } from "./errors.js";
import { decodeOid, decodeSmallUnsigned, derChildren, DerTag, expectTag, type DerElement } from "./der.js";

export type HashName = "sha256" | "sha384" | "sha512";

/**
 * A certificate/CRL signature algorithm we accept. Anything else (SHA-1, MD5, PSS with SHA-1
 * or a mismatched MGF1 hash) is rejected at parse time: an allow-list fails closed.
 */
export type SignatureAlgorithm =
  | { kind: "ecdsa"; hash: HashName; oid: string }
  | { kind: "rsa-pkcs1"; hash: HashName; oid: string }
  | { kind: "rsa-pss"; hash: HashName; saltLength: number; oid: string };

export const OID = {
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  ecdsaWithSha384: "1.2.840.10045.4.3.3",
  ecdsaWithSha512: "1.2.840.10045.4.3.4",
  sha256WithRsa: "1.2.840.113549.1.1.11",
  sha384WithRsa: "1.2.840.113549.1.1.12",
  sha512WithRsa: "1.2.840.113549.1.1.13",
  rsassaPss: "1.2.840.113549.1.1.10",
  mgf1: "1.2.840.113549.1.1.8",
  sha256: "2.16.840.1.101.3.4.2.1",
  sha384: "2.16.840.1.101.3.4.2.2",
  sha512: "2.16.840.1.101.3.4.2.3",
} as const;

const ECDSA: Record<string, HashName> = {
  [OID.ecdsaWithSha256]: "sha256",
  [OID.ecdsaWithSha384]: "sha384",
  [OID.ecdsaWithSha512]: "sha512",
};
const RSA_PKCS1: Record<string, HashName> = {
  [OID.sha256WithRsa]: "sha256",
  [OID.sha384WithRsa]: "sha384",
  [OID.sha512WithRsa]: "sha512",
};
const HASHES: Record<string, HashName> = {
  [OID.sha256]: "sha256",
  [OID.sha384]: "sha384",
  [OID.sha512]: "sha512",
};

/** Parses an AlgorithmIdentifier SEQUENCE into an accepted signature algorithm. */
export function parseSignatureAlgorithm(el: DerElement, what: string): SignatureAlgorithm {
  expectTag(el, DerTag.SEQUENCE, what);
  const parts = derChildren(el, what);
  if (parts.length < 1 || parts.length > 2)
    throw new CertificateFormatError(`${what}: malformed AlgorithmIdentifier`);
  const oid = decodeOid(parts[0], what);
  const params = parts[1];
  if (oid in ECDSA) {
    // RFC 5758: ECDSA parameters MUST be absent.
    if (params) throw new CertificateFormatError(`${what}: ECDSA parameters must be absent`);
    return { kind: "ecdsa", hash: ECDSA[oid], oid };
  }
  if (oid in RSA_PKCS1) {
    if (params && !(params.tag === DerTag.NULL && params.content.length === 0)) {
      throw new CertificateFormatError(`${what}: RSA PKCS#1 parameters must be NULL or absent`);
    }
    return { kind: "rsa-pkcs1", hash: RSA_PKCS1[oid], oid };
  }
  if (oid === OID.rsassaPss) {
    if (!params) throw new CertificateFormatError(`${what}: RSASSA-PSS parameters are required`);
    return { kind: "rsa-pss", ...parsePssParams(params, what), oid };
  }
  throw new CertificateFormatError(`${what}: signature algorithm not allowed`);
}

/** RFC 4055 RSASSA-PSS-params. Defaults (SHA-1) are not allowed, so hash and MGF1 must be explicit. */
function parsePssParams(el: DerElement, what: string): { hash: HashName; saltLength: number } {
  expectTag(el, DerTag.SEQUENCE, what);
  let hash: HashName | undefined;
  let mgfHash: HashName | undefined;
  let saltLength = 20;
  let lastTag = -1;
  for (const field of derChildren(el, what)) {
    if (field.tag <= lastTag) throw new CertificateFormatError(`${what}: PSS parameters out of order`);
    lastTag = field.tag;
    const [inner, ...extra] = derChildren(field, what);
    if (!inner || extra.length) throw new CertificateFormatError(`${what}: malformed PSS parameter`);
    switch (field.tag) {
      case 0xa0:
        hash = parseHashAlgorithm(inner, what);
        break;
      case 0xa1: {
        expectTag(inner, DerTag.SEQUENCE, what);
        const [mgfOid, mgfParams, ...rest] = derChildren(inner, what);
        if (!mgfOid || !mgfParams || rest.length || decodeOid(mgfOid, what) !== OID.mgf1) {
          throw new CertificateFormatError(`${what}: PSS mask generation must be MGF1`);
        }
        mgfHash = parseHashAlgorithm(mgfParams, what);
        break;
      }
      case 0xa2:
        saltLength = decodeSmallUnsigned(inner, what);
        break;
      case 0xa3:
        if (decodeSmallUnsigned(inner, what) !== 1)
          throw new CertificateFormatError(`${what}: PSS trailer must be 1`);
        break;
      default:
        throw new CertificateFormatError(`${what}: unknown PSS parameter`);
    }
  }
  if (!hash || !mgfHash)
    throw new CertificateFormatError(`${what}: PSS with the SHA-1 default is not allowed`);
  if (hash !== mgfHash)
    throw new CertificateFormatError(`${what}: PSS MGF1 hash differs from the message hash`);
  return { hash, saltLength };
}

function parseHashAlgorithm(el: DerElement, what: string): HashName {
  expectTag(el, DerTag.SEQUENCE, what);
  const [oidEl, params, ...rest] = derChildren(el, what);
  if (!oidEl || rest.length) throw new CertificateFormatError(`${what}: malformed hash AlgorithmIdentifier`);
  if (params && !(params.tag === DerTag.NULL && params.content.length === 0)) {
    throw new CertificateFormatError(`${what}: hash parameters must be NULL or absent`);
  }
  const hash = HASHES[decodeOid(oidEl, what)];
  if (!hash) throw new CertificateFormatError(`${what}: hash algorithm not allowed`);
  return hash;
}

const ALLOWED_CURVES = new Set(["prime256v1", "secp384r1", "secp521r1"]);
const MIN_RSA_BITS = 2048;

/** Why a public key is unacceptable for signature verification, or undefined when it is fine. */
export function publicKeyProblem(key: KeyObject): string | undefined {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case "ec":
      return ALLOWED_CURVES.has(details.namedCurve ?? "") ? undefined : "EC curve not allowed";
    case "rsa":
    case "rsa-pss":
      return (details.modulusLength ?? 0) >= MIN_RSA_BITS ? undefined : "RSA key shorter than 2048 bits";
    default:
      return "public key type not allowed";
  }
}

/**
 * Verifies an X.509-style signature (DER ECDSA, PKCS#1 v1.5 or PSS) over `data` with an accepted
 * algorithm. Returns false (never throws) on a bad signature or a key/algorithm mismatch.
 */
export function verifySignature(
  algorithm: SignatureAlgorithm,
  publicKey: KeyObject,
  data: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (publicKeyProblem(publicKey)) return false;
  const type = publicKey.asymmetricKeyType;
  try {
    switch (algorithm.kind) {
      case "ecdsa":
        if (type !== "ec") return false;
        return verify(algorithm.hash, data, { key: publicKey, dsaEncoding: "der" }, signature);
      case "rsa-pkcs1":
        if (type !== "rsa") return false;
        return verify(
          algorithm.hash,
          data,
          { key: publicKey, padding: constants.RSA_PKCS1_PADDING },
          signature,
        );
      case "rsa-pss":
        if (type !== "rsa" && type !== "rsa-pss") return false;
        // OpenSSL uses the message digest for MGF1 too, which parsePssParams has required.
        return verify(
          algorithm.hash,
          data,
          { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: algorithm.saltLength },
          signature,
        );
    }
  } catch {
    return false;
  }
}

const CURVE_BYTES: Record<string, number> = { prime256v1: 32, secp384r1: 48, secp521r1: 66 };

/**
 * Verifies a raw ECDSA signature given as big-endian r||s (IEEE P1363), as used by SNP reports,
 * SGX/TDX quotes and COSE. `publicKey` may be a KeyObject, DER SPKI, or an uncompressed point
 * (0x04||X||Y) together with `curve`.
 */
export function verifyEcdsaRaw(params: {
  publicKey: KeyObject | Uint8Array;
  curve?: "P-256" | "P-384" | "P-521";
  hash: HashName;
  data: Uint8Array;
  signature: Uint8Array;
}): boolean {
  let key: KeyObject;
  try {
    key = toEcPublicKey(params.publicKey, params.curve);
  } catch {
    return false;
  }
  if (key.asymmetricKeyType !== "ec") return false;
  const curve = key.asymmetricKeyDetails?.namedCurve ?? "";
  const size = CURVE_BYTES[curve];
  if (!size || params.signature.length !== 2 * size) return false;
  try {
    return verify(params.hash, params.data, { key, dsaEncoding: "ieee-p1363" }, params.signature);
  } catch {
    return false;
  }
}

const JWK_CURVES = { "P-256": 32, "P-384": 48, "P-521": 66 } as const;

/** An EC public key from a KeyObject, DER SubjectPublicKeyInfo, or an uncompressed point. */
export function toEcPublicKey(key: KeyObject | Uint8Array, curve?: "P-256" | "P-384" | "P-521"): KeyObject {
  if (!(key instanceof Uint8Array)) return key;
  if (key[0] === 0x04 && curve) {
    const n = JWK_CURVES[curve];
    if (key.length !== 1 + 2 * n) throw new CertificateFormatError("EC point: wrong length for the curve");
    const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64url");
    return createPublicKey({
      key: { kty: "EC", crv: curve, x: b64(key.subarray(1, 1 + n)), y: b64(key.subarray(1 + n)) },
      format: "jwk",
    });
  }
  return createPublicKey({ key: Buffer.from(key), format: "der", type: "spki" });
}
