import { bytesEqual, type ParsedCertificate } from "./certificate.js";
import {
  decodeBitString,
  decodeBoolean,
  decodeInteger,
  decodeOid,
  decodeSmallUnsigned,
  decodeTime,
  derChildren,
  DerTag,
  expectTag,
  readDerExact,
  type DerElement,
} from "./der.js";
import { CertificateFormatError } from "./errors.js";
import { parseSignatureAlgorithm, verifySignature, type SignatureAlgorithm } from "./signature.js";
import type { RevocationCheck, RevocationResult } from "./chain.js";

/** A parsed X.509 v2 certificate revocation list (RFC 5280 section 5). Byte fields are views into `der`. */
export interface ParsedCrl {
  der: Uint8Array;
  /** The signed TBSCertList bytes exactly as encoded. */
  tbs: Uint8Array;
  signatureAlgorithm: SignatureAlgorithm;
  signature: Uint8Array;
  issuerDer: Uint8Array;
  thisUpdate: Date;
  nextUpdate?: Date;
  /** Revoked serial numbers, lowercase hex of the INTEGER contents (as ParsedCertificate.serialNumber). */
  revokedSerials: ReadonlySet<string>;
  crlNumber?: bigint;
}

const CRL_EXTENSION = {
  crlNumber: "2.5.29.20",
  authorityKeyIdentifier: "2.5.29.35",
} as const;
const CRL_ENTRY_EXTENSION = {
  reasonCode: "2.5.29.21",
  invalidityDate: "2.5.29.24",
} as const;
// Critical extensions we do not implement (delta CRLs, issuing distribution points, indirect
// CRLs) change what a CRL covers; RFC 5280 5.2/5.3 says such a CRL must not be relied on.
const UNDERSTOOD_CRL_EXTENSIONS = new Set<string>(Object.values(CRL_EXTENSION));
const UNDERSTOOD_ENTRY_EXTENSIONS = new Set<string>(Object.values(CRL_ENTRY_EXTENSION));

/** Parses a DER CRL strictly; throws CertificateFormatError naming the field. */
export function parseCrl(der: Uint8Array): ParsedCrl {
  const list = readDerExact(der, DerTag.SEQUENCE, "crl");
  const top = derChildren(list, "crl");
  if (top.length !== 3) throw new CertificateFormatError("crl: expected tbsCertList, algorithm, signature");
  const [tbsEl, outerAlgEl, sigEl] = top;
  expectTag(tbsEl, DerTag.SEQUENCE, "tbsCertList");
  const fields = derChildren(tbsEl, "tbsCertList");
  let i = 0;
  if (fields[i]?.tag === DerTag.INTEGER) {
    if (decodeSmallUnsigned(fields[i], "tbsCertList.version") !== 1) {
      throw new CertificateFormatError("tbsCertList.version: must be v2");
    }
    i++;
  }
  const need = (name: string): DerElement => {
    const el = fields[i++];
    if (!el) throw new CertificateFormatError(`tbsCertList.${name}: missing`);
    return el;
  };
  const innerAlgEl = need("signature");
  const issuerEl = need("issuer");
  expectTag(issuerEl, DerTag.SEQUENCE, "tbsCertList.issuer");
  const thisUpdate = decodeTime(need("thisUpdate"), "tbsCertList.thisUpdate");
  let nextUpdate: Date | undefined;
  if (fields[i] && (fields[i].tag === DerTag.UTC_TIME || fields[i].tag === DerTag.GENERALIZED_TIME)) {
    nextUpdate = decodeTime(fields[i++], "tbsCertList.nextUpdate");
  }
  const revokedSerials = new Set<string>();
  if (fields[i]?.tag === DerTag.SEQUENCE) {
    for (const entry of derChildren(fields[i++], "tbsCertList.revokedCertificates")) {
      revokedSerials.add(parseEntry(entry));
    }
  }
  let crlNumber: bigint | undefined;
  if (fields[i]?.tag === 0xa0) {
    const [seq, ...rest] = derChildren(fields[i++], "tbsCertList.crlExtensions");
    if (!seq || rest.length) throw new CertificateFormatError("tbsCertList.crlExtensions: malformed");
    for (const ext of parseExtensionList(seq, "tbsCertList.crlExtensions", UNDERSTOOD_CRL_EXTENSIONS)) {
      if (ext.oid === CRL_EXTENSION.crlNumber) {
        crlNumber = decodeInteger(readDerExact(ext.value, DerTag.INTEGER, "crlNumber"), "crlNumber");
      }
    }
  }
  if (i !== fields.length) throw new CertificateFormatError("tbsCertList: unexpected trailing field");
  if (!bytesEqual(innerAlgEl.raw, outerAlgEl.raw)) {
    throw new CertificateFormatError("crl.signatureAlgorithm: differs from tbsCertList.signature");
  }
  return {
    der,
    tbs: tbsEl.raw,
    signatureAlgorithm: parseSignatureAlgorithm(outerAlgEl, "crl.signatureAlgorithm"),
    signature: decodeBitString(sigEl, "crl.signatureValue"),
    issuerDer: issuerEl.raw,
    thisUpdate,
    nextUpdate,
    revokedSerials,
    crlNumber,
  };
}

function parseEntry(entry: DerElement): string {
  const what = "tbsCertList.revokedCertificates";
  expectTag(entry, DerTag.SEQUENCE, what);
  const [serialEl, dateEl, extEl, ...rest] = derChildren(entry, what);
  if (!serialEl || !dateEl || rest.length) throw new CertificateFormatError(`${what}: malformed entry`);
  decodeInteger(serialEl, `${what}.userCertificate`);
  decodeTime(dateEl, `${what}.revocationDate`);
  if (extEl) parseExtensionList(extEl, `${what}.crlEntryExtensions`, UNDERSTOOD_ENTRY_EXTENSIONS);
  return Buffer.from(serialEl.content).toString("hex");
}

function parseExtensionList(
  seq: DerElement,
  what: string,
  understood: ReadonlySet<string>,
): Array<{ oid: string; value: Uint8Array }> {
  expectTag(seq, DerTag.SEQUENCE, what);
  const out: Array<{ oid: string; value: Uint8Array }> = [];
  const seen = new Set<string>();
  for (const ext of derChildren(seq, what)) {
    expectTag(ext, DerTag.SEQUENCE, what);
    const parts = derChildren(ext, what);
    if (parts.length !== 2 && parts.length !== 3)
      throw new CertificateFormatError(`${what}: malformed Extension`);
    const oid = decodeOid(parts[0], what);
    const critical = parts.length === 3 ? decodeBoolean(parts[1], `${what}.critical`) : false;
    const valueEl = parts[parts.length - 1];
    expectTag(valueEl, DerTag.OCTET_STRING, `${what}.extnValue`);
    if (seen.has(oid)) throw new CertificateFormatError(`${what}: duplicate extension`);
    seen.add(oid);
    if (critical && !understood.has(oid)) {
      throw new CertificateFormatError(`${what}: unsupported critical extension ${oid}`);
    }
    out.push({ oid, value: valueEl.content });
  }
  return out;
}

/**
 * Whether `crl` is a currently valid CRL issued by `issuer`: same issuer name, issuer allowed to
 * sign CRLs, signature verifies with the issuer's key, and thisUpdate <= at <= nextUpdate.
 * A CRL without nextUpdate is refused: we could not tell a stale list from a fresh one.
 */
export function checkCrlIssuedBy(crl: ParsedCrl, issuer: ParsedCertificate, at: Date): RevocationResult {
  if (!bytesEqual(crl.issuerDer, issuer.subjectDer)) {
    return { ok: false, detail: "CRL issuer name does not equal the issuing certificate's subject" };
  }
  if (issuer.keyUsage && !issuer.keyUsage.cRLSign) {
    return { ok: false, detail: "issuing certificate's keyUsage lacks cRLSign" };
  }
  if (!verifySignature(crl.signatureAlgorithm, issuer.publicKey, crl.tbs, crl.signature)) {
    return { ok: false, detail: "CRL signature does not verify with the issuer's public key" };
  }
  if (at < crl.thisUpdate) return { ok: false, detail: "CRL thisUpdate is after the validation time" };
  if (!crl.nextUpdate) return { ok: false, detail: "CRL has no nextUpdate" };
  if (at > crl.nextUpdate)
    return { ok: false, detail: "CRL nextUpdate is before the validation time (stale CRL)" };
  return { ok: true };
}

/** Whether `cert` (issued by the CRL's issuer) is listed as revoked. */
export function isRevokedBy(crl: ParsedCrl, cert: ParsedCertificate): boolean {
  return bytesEqual(crl.issuerDer, cert.issuerDer) && crl.revokedSerials.has(cert.serialNumber);
}

/**
 * A revocation hook for verifyCertificateChain: every certificate below the anchor must be
 * covered by a valid CRL from its issuer, and must not be listed on it. Missing coverage fails
 * closed.
 */
export function crlRevocationCheck(crls: readonly ParsedCrl[], at: Date): RevocationCheck {
  return (cert, issuer) => {
    const fromIssuer = crls.filter((c) => bytesEqual(c.issuerDer, issuer.subjectDer));
    if (fromIssuer.length === 0)
      return { ok: false, detail: "no CRL from this certificate's issuer was given" };
    for (const crl of fromIssuer) {
      const valid = checkCrlIssuedBy(crl, issuer, at);
      if (!valid.ok) return valid;
      if (isRevokedBy(crl, cert))
        return { ok: false, detail: "certificate serial number is listed as revoked" };
    }
    return { ok: true };
  };
}
