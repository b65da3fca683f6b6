import { createHash, createPublicKey, type KeyObject, type X509Certificate } from "node:crypto";
import { CertificateFormatError } from "./errors.js";
import {
  decodeBitString,
  decodeBoolean,
  decodeInteger,
  decodeOid,
  decodeSmallUnsigned,
  decodeString,
  decodeTime,
  derChildren,
  DerTag,
  expectTag,
  readDerExact,
  type DerElement,
} from "./der.js";
import { parseSignatureAlgorithm, type SignatureAlgorithm } from "./signature.js";

/**
 * Certificate bytes as accepted by the PKI helpers: DER, an @peculiar/x509 object, a node
 * X509Certificate, or an already parsed certificate.
 */
export type CertificateInput = Uint8Array | { rawData: ArrayBuffer } | X509Certificate | ParsedCertificate;

export interface CertificateExtension {
  oid: string;
  critical: boolean;
  /** The extnValue OCTET STRING contents (itself usually DER). */
  value: Uint8Array;
}

export interface BasicConstraints {
  ca: boolean;
  pathLength?: number;
}

/** RFC 5280 KeyUsage bits we look at. */
export interface KeyUsage {
  digitalSignature: boolean;
  keyCertSign: boolean;
  cRLSign: boolean;
}

/** A parsed X.509 v3 certificate. Byte fields are views into `der`. */
export interface ParsedCertificate {
  der: Uint8Array;
  /** Lowercase hex SHA-256 of the DER: the pinning identity. */
  fingerprint256: string;
  /** The signed TBSCertificate bytes exactly as encoded. */
  tbs: Uint8Array;
  signatureAlgorithm: SignatureAlgorithm;
  signature: Uint8Array;
  version: number;
  /** Lowercase hex of the serial number's two's-complement bytes. */
  serialNumber: string;
  issuerDer: Uint8Array;
  subjectDer: Uint8Array;
  /** Readable names, e.g. "CN=SEV-Milan, O=Advanced Micro Devices, ...", for diagnostics only. */
  issuer: string;
  subject: string;
  subjectCommonName?: string;
  notBefore: Date;
  notAfter: Date;
  /** DER SubjectPublicKeyInfo. */
  spki: Uint8Array;
  publicKey: KeyObject;
  extensions: CertificateExtension[];
  basicConstraints?: BasicConstraints;
  keyUsage?: KeyUsage;
}

export const EXTENSION_OID = {
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extendedKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  subjectKeyIdentifier: "2.5.29.14",
  authorityKeyIdentifier: "2.5.29.35",
  crlDistributionPoints: "2.5.29.31",
} as const;

const NAME_LABELS: Record<string, string> = {
  "2.5.4.3": "CN",
  "2.5.4.5": "serialNumber",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
};

export function certificateBytes(input: CertificateInput): Uint8Array {
  if (input instanceof Uint8Array) return input;
  if (isParsedCertificate(input)) return input.der;
  if ("rawData" in input && input.rawData instanceof ArrayBuffer) return new Uint8Array(input.rawData);
  if ("raw" in input && input.raw instanceof Uint8Array) return new Uint8Array(input.raw);
  throw new CertificateFormatError("certificate: expected DER bytes or an X.509 certificate object");
}

function isParsedCertificate(input: CertificateInput): input is ParsedCertificate {
  return (
    !(input instanceof Uint8Array) &&
    "der" in input &&
    input.der instanceof Uint8Array &&
    "tbs" in input &&
    "fingerprint256" in input
  );
}

/** Lowercase hex SHA-256 of DER bytes. */
export function sha256Fingerprint(der: Uint8Array): string {
  return createHash("sha256").update(der).digest("hex");
}

/** Normalises "AA:BB..." / "aabb..." fingerprints to lowercase hex; throws unless 32 bytes. */
export function normalizeFingerprint(fingerprint: string): string {
  const hex = fingerprint.replace(/[:\s]/g, "").toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex))
    throw new CertificateFormatError("fingerprint: expected 64 hex digits (SHA-256)");
  return hex;
}

/** Parses a DER X.509 certificate strictly; throws CertificateFormatError naming the field. */
export function parseCertificate(input: CertificateInput): ParsedCertificate {
  if (isParsedCertificate(input)) return input;
  const der = certificateBytes(input);
  const cert = readDerExact(der, DerTag.SEQUENCE, "certificate");
  const top = derChildren(cert, "certificate");
  if (top.length !== 3)
    throw new CertificateFormatError("certificate: expected tbsCertificate, algorithm, signature");
  const [tbsEl, outerAlgEl, sigEl] = top;
  expectTag(tbsEl, DerTag.SEQUENCE, "tbsCertificate");

  const fields = derChildren(tbsEl, "tbsCertificate");
  let i = 0;
  let version = 1;
  if (fields[i]?.tag === 0xa0) {
    const [v, ...rest] = derChildren(fields[i], "tbsCertificate.version");
    if (!v || rest.length) throw new CertificateFormatError("tbsCertificate.version: malformed");
    version = decodeSmallUnsigned(v, "tbsCertificate.version") + 1;
    if (version !== 2 && version !== 3)
      throw new CertificateFormatError("tbsCertificate.version: must be v2 or v3");
    i++;
  }
  const need = (name: string): DerElement => {
    const el = fields[i++];
    if (!el) throw new CertificateFormatError(`tbsCertificate.${name}: missing`);
    return el;
  };
  const serialEl = need("serialNumber");
  decodeInteger(serialEl, "tbsCertificate.serialNumber");
  const innerAlgEl = need("signature");
  const issuerEl = need("issuer");
  const validityEl = need("validity");
  const subjectEl = need("subject");
  const spkiEl = need("subjectPublicKeyInfo");
  expectTag(issuerEl, DerTag.SEQUENCE, "tbsCertificate.issuer");
  expectTag(subjectEl, DerTag.SEQUENCE, "tbsCertificate.subject");
  expectTag(spkiEl, DerTag.SEQUENCE, "tbsCertificate.subjectPublicKeyInfo");

  // RFC 5280 4.1.1.2: the outer and inner algorithm identifiers must be identical.
  if (!bytesEqual(innerAlgEl.raw, outerAlgEl.raw)) {
    throw new CertificateFormatError("certificate.signatureAlgorithm: differs from tbsCertificate.signature");
  }
  const signatureAlgorithm = parseSignatureAlgorithm(outerAlgEl, "certificate.signatureAlgorithm");
  const signature = decodeBitString(sigEl, "certificate.signatureValue");

  expectTag(validityEl, DerTag.SEQUENCE, "tbsCertificate.validity");
  const times = derChildren(validityEl, "tbsCertificate.validity");
  if (times.length !== 2)
    throw new CertificateFormatError("tbsCertificate.validity: expected notBefore, notAfter");
  const notBefore = decodeTime(times[0], "tbsCertificate.validity.notBefore");
  const notAfter = decodeTime(times[1], "tbsCertificate.validity.notAfter");

  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(spkiEl.raw), format: "der", type: "spki" });
  } catch {
    throw new CertificateFormatError(
      "tbsCertificate.subjectPublicKeyInfo: unsupported or malformed public key",
    );
  }

  let extensions: CertificateExtension[] = [];
  // Optional issuerUniqueID [1], subjectUniqueID [2] (primitive or constructed), then extensions [3].
  while (i < fields.length && (fields[i].tag & 0x1f) < 3 && (fields[i].tag & 0xc0) === 0x80) i++;
  if (i < fields.length) {
    const extEl = fields[i++];
    if (extEl.tag !== 0xa3) throw new CertificateFormatError("tbsCertificate: unexpected trailing field");
    if (version !== 3) throw new CertificateFormatError("tbsCertificate.extensions: only allowed in v3");
    extensions = parseExtensions(extEl);
  }
  if (i !== fields.length) throw new CertificateFormatError("tbsCertificate: unexpected trailing field");

  const subjectNames = parseName(subjectEl, "tbsCertificate.subject");
  const cert0: ParsedCertificate = {
    der,
    fingerprint256: sha256Fingerprint(der),
    tbs: tbsEl.raw,
    signatureAlgorithm,
    signature,
    version,
    serialNumber: Buffer.from(serialEl.content).toString("hex"),
    issuerDer: issuerEl.raw,
    subjectDer: subjectEl.raw,
    issuer: formatName(parseName(issuerEl, "tbsCertificate.issuer")),
    subject: formatName(subjectNames),
    subjectCommonName: subjectNames.find(([oid]) => oid === "2.5.4.3")?.[1],
    notBefore,
    notAfter,
    spki: spkiEl.raw,
    publicKey,
    extensions,
  };
  const bc = findExtension(cert0, EXTENSION_OID.basicConstraints);
  if (bc) cert0.basicConstraints = parseBasicConstraints(bc.value);
  const ku = findExtension(cert0, EXTENSION_OID.keyUsage);
  if (ku) cert0.keyUsage = parseKeyUsage(ku.value);
  return cert0;
}

/** The extension with this OID, if present (parseCertificate has rejected duplicates). */
export function findExtension(cert: ParsedCertificate, oid: string): CertificateExtension | undefined {
  return cert.extensions.find((e) => e.oid === oid);
}

function parseExtensions(extEl: DerElement): CertificateExtension[] {
  const what = "tbsCertificate.extensions";
  const [seq, ...rest] = derChildren(extEl, what);
  if (!seq || rest.length) throw new CertificateFormatError(`${what}: malformed`);
  expectTag(seq, DerTag.SEQUENCE, what);
  const out: CertificateExtension[] = [];
  const seen = new Set<string>();
  for (const ext of derChildren(seq, what)) {
    expectTag(ext, DerTag.SEQUENCE, what);
    const parts = derChildren(ext, what);
    const oid = decodeOid(parts[0] ?? ext, what);
    let critical = false;
    let valueEl = parts[1];
    if (parts.length === 3) {
      // An explicit FALSE is not strict DER, but vendors emit it and it is unambiguous.
      critical = decodeBoolean(parts[1], `${what}.critical`);
      valueEl = parts[2];
    } else if (parts.length !== 2) {
      throw new CertificateFormatError(`${what}: malformed Extension`);
    }
    expectTag(valueEl, DerTag.OCTET_STRING, `${what}.extnValue`);
    if (seen.has(oid)) throw new CertificateFormatError(`${what}: duplicate extension`);
    seen.add(oid);
    out.push({ oid, critical, value: valueEl.content });
  }
  return out;
}

function parseBasicConstraints(value: Uint8Array): BasicConstraints {
  const what = "extension basicConstraints";
  const seq = readDerExact(value, DerTag.SEQUENCE, what);
  const parts = derChildren(seq, what);
  let ca = false;
  let pathLength: number | undefined;
  let k = 0;
  if (parts[k]?.tag === DerTag.BOOLEAN) ca = decodeBoolean(parts[k++], what);
  if (parts[k]?.tag === DerTag.INTEGER) pathLength = decodeSmallUnsigned(parts[k++], what);
  if (k !== parts.length) throw new CertificateFormatError(`${what}: malformed`);
  return pathLength === undefined ? { ca } : { ca, pathLength };
}

function parseKeyUsage(value: Uint8Array): KeyUsage {
  const what = "extension keyUsage";
  const bits = decodeBitString(readDerExact(value, DerTag.BIT_STRING, what), what, false);
  const bit = (n: number) => (bits.length > n >> 3 ? (bits[n >> 3] & (0x80 >> (n & 7))) !== 0 : false);
  return { digitalSignature: bit(0), keyCertSign: bit(5), cRLSign: bit(6) };
}

function parseName(nameEl: DerElement, what: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const rdn of derChildren(nameEl, what)) {
    expectTag(rdn, DerTag.SET, what);
    for (const atv of derChildren(rdn, what)) {
      expectTag(atv, DerTag.SEQUENCE, what);
      const [typeEl, valueEl, ...rest] = derChildren(atv, what);
      if (!typeEl || !valueEl || rest.length)
        throw new CertificateFormatError(`${what}: malformed attribute`);
      const oid = decodeOid(typeEl, what);
      let text: string;
      try {
        text = decodeString(valueEl, what);
      } catch {
        text = "#" + Buffer.from(valueEl.raw).toString("hex");
      }
      out.push([oid, text]);
    }
  }
  return out;
}

function formatName(parts: Array<[string, string]>): string {
  return parts.map(([oid, v]) => `${NAME_LABELS[oid] ?? oid}=${v}`).join(", ");
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let k = 0; k < a.length; k++) diff |= a[k] ^ b[k];
  return diff === 0;
}
