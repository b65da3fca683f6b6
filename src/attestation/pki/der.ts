import { CertificateFormatError } from "./errors.js";

/**
 * A strict DER (X.690) reader: definite, minimal lengths; low tag numbers only (all X.509,
 * CRL and vendor-extension structures we read use tags < 31). Strictness matters because
 * attestation evidence is attacker-supplied: an ambiguous BER encoding must not parse.
 */
export interface DerElement {
  /** The whole identifier octet, e.g. 0x30 for SEQUENCE, 0xa3 for [3] constructed. */
  tag: number;
  constructed: boolean;
  /** Offset of the identifier octet in the buffer it was read from. */
  start: number;
  /** Offset just past the element. */
  end: number;
  /** The complete TLV encoding (a view, not a copy). */
  raw: Uint8Array;
  /** The value octets (a view, not a copy). */
  content: Uint8Array;
}

export const DerTag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  TELETEX_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Reads one TLV starting at `offset`; `what` names the structure in errors. */
export function readDerElement(bytes: Uint8Array, offset: number, what: string): DerElement {
  if (offset >= bytes.length) throw new CertificateFormatError(`${what}: truncated (no tag)`);
  const tag = bytes[offset];
  if ((tag & 0x1f) === 0x1f) throw new CertificateFormatError(`${what}: high tag numbers are not supported`);
  let pos = offset + 1;
  if (pos >= bytes.length) throw new CertificateFormatError(`${what}: truncated (no length)`);
  const first = bytes[pos++];
  let length: number;
  if (first < 0x80) {
    length = first;
  } else {
    const count = first & 0x7f;
    if (count === 0) throw new CertificateFormatError(`${what}: indefinite length is not DER`);
    if (count > 4) throw new CertificateFormatError(`${what}: length field too long`);
    if (pos + count > bytes.length) throw new CertificateFormatError(`${what}: truncated length`);
    if (bytes[pos] === 0) throw new CertificateFormatError(`${what}: non-minimal length encoding`);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[pos++];
    if (length < 0x80) throw new CertificateFormatError(`${what}: non-minimal length encoding`);
  }
  const end = pos + length;
  if (end > bytes.length)
    throw new CertificateFormatError(`${what}: value runs past the end of its container`);
  return {
    tag,
    constructed: (tag & 0x20) !== 0,
    start: offset,
    end,
    raw: bytes.subarray(offset, end),
    content: bytes.subarray(pos, end),
  };
}

/** Parses `bytes` as exactly one element of the given tag (no trailing bytes). */
export function readDerExact(bytes: Uint8Array, tag: number, what: string): DerElement {
  const el = readDerElement(bytes, 0, what);
  if (el.end !== bytes.length) throw new CertificateFormatError(`${what}: trailing bytes after the element`);
  expectTag(el, tag, what);
  return el;
}

/** The elements inside a constructed element, in order. */
export function derChildren(el: DerElement, what: string): DerElement[] {
  if (!el.constructed) throw new CertificateFormatError(`${what}: expected a constructed element`);
  const out: DerElement[] = [];
  let offset = 0;
  while (offset < el.content.length) {
    const child = readDerElement(el.content, offset, what);
    out.push(child);
    offset = child.end;
  }
  return out;
}

export function expectTag(el: DerElement, tag: number, what: string): void {
  if (el.tag !== tag) throw new CertificateFormatError(`${what}: unexpected ASN.1 tag`);
}

/** Dotted-decimal object identifier. */
export function decodeOid(el: DerElement, what: string): string {
  expectTag(el, DerTag.OID, what);
  const c = el.content;
  if (c.length === 0) throw new CertificateFormatError(`${what}: empty OBJECT IDENTIFIER`);
  const arcs: bigint[] = [];
  let value = 0n;
  let started = false;
  for (let i = 0; i < c.length; i++) {
    if (!started && c[i] === 0x80) throw new CertificateFormatError(`${what}: non-minimal OID arc`);
    started = true;
    value = (value << 7n) | BigInt(c[i] & 0x7f);
    if ((c[i] & 0x80) === 0) {
      arcs.push(value);
      value = 0n;
      started = false;
    }
  }
  if (started) throw new CertificateFormatError(`${what}: truncated OID arc`);
  const first = arcs[0];
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join(".");
}

/** Signed DER INTEGER as a bigint (minimal two's-complement encoding required). */
export function decodeInteger(el: DerElement, what: string): bigint {
  expectTag(el, DerTag.INTEGER, what);
  const c = el.content;
  if (c.length === 0) throw new CertificateFormatError(`${what}: empty INTEGER`);
  if (c.length > 1 && ((c[0] === 0 && (c[1] & 0x80) === 0) || (c[0] === 0xff && (c[1] & 0x80) !== 0))) {
    throw new CertificateFormatError(`${what}: non-minimal INTEGER`);
  }
  let v = 0n;
  for (const b of c) v = (v << 8n) | BigInt(b);
  if (c[0] & 0x80) v -= 1n << BigInt(8 * c.length);
  return v;
}

/** A DER INTEGER that must be a safe non-negative JS number. */
export function decodeSmallUnsigned(el: DerElement, what: string): number {
  const v = decodeInteger(el, what);
  if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER))
    throw new CertificateFormatError(`${what}: out of range`);
  return Number(v);
}

export function decodeBoolean(el: DerElement, what: string): boolean {
  expectTag(el, DerTag.BOOLEAN, what);
  if (el.content.length !== 1 || (el.content[0] !== 0 && el.content[0] !== 0xff)) {
    throw new CertificateFormatError(`${what}: BOOLEAN must be one octet, 0x00 or 0xff`);
  }
  return el.content[0] === 0xff;
}

/** BIT STRING value octets; `requireOctetAligned` rejects unused trailing bits (signatures, keys). */
export function decodeBitString(el: DerElement, what: string, requireOctetAligned = true): Uint8Array {
  expectTag(el, DerTag.BIT_STRING, what);
  if (el.content.length === 0) throw new CertificateFormatError(`${what}: empty BIT STRING`);
  const unused = el.content[0];
  if (unused > 7 || (requireOctetAligned && unused !== 0)) {
    throw new CertificateFormatError(`${what}: unexpected unused bits in BIT STRING`);
  }
  return el.content.subarray(1);
}

/** Character strings used in names and vendor extensions. */
export function decodeString(el: DerElement, what: string): string {
  switch (el.tag) {
    case DerTag.UTF8_STRING:
      return new TextDecoder("utf-8", { fatal: true }).decode(el.content);
    case DerTag.PRINTABLE_STRING:
    case DerTag.IA5_STRING:
      for (const b of el.content) {
        if (b > 0x7f) throw new CertificateFormatError(`${what}: non-ASCII octet in ASCII string`);
      }
      return String.fromCharCode(...el.content);
    case DerTag.TELETEX_STRING:
      return String.fromCharCode(...el.content);
    case DerTag.BMP_STRING: {
      if (el.content.length % 2 !== 0) throw new CertificateFormatError(`${what}: odd-length BMPString`);
      let s = "";
      for (let i = 0; i < el.content.length; i += 2)
        s += String.fromCharCode((el.content[i] << 8) | el.content[i + 1]);
      return s;
    }
    default:
      throw new CertificateFormatError(`${what}: not a supported string type`);
  }
}

/** UTCTime (YYMMDDHHMMSSZ, RFC 5280 window 1950..2049) or GeneralizedTime (YYYYMMDDHHMMSSZ). */
export function decodeTime(el: DerElement, what: string): Date {
  const text = String.fromCharCode(...el.content);
  let m: RegExpExecArray | null;
  let year: number;
  if (el.tag === DerTag.UTC_TIME) {
    m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
    if (!m) throw new CertificateFormatError(`${what}: UTCTime must be YYMMDDHHMMSSZ`);
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (el.tag === DerTag.GENERALIZED_TIME) {
    m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
    if (!m) throw new CertificateFormatError(`${what}: GeneralizedTime must be YYYYMMDDHHMMSSZ`);
    year = Number(m[1]);
  } else {
    throw new CertificateFormatError(`${what}: expected UTCTime or GeneralizedTime`);
  }
  const [mo, d, h, mi, s] = [m[2], m[3], m[4], m[5], m[6]].map(Number);
  const ms = Date.UTC(year, mo - 1, d, h, mi, s);
  const date = new Date(ms);
  // Date.UTC silently rolls 31 Feb into March; a round-trip check rejects impossible dates.
  if (
    date.getUTCFullYear() !== year ||
    date.getUTCMonth() !== mo - 1 ||
    date.getUTCDate() !== d ||
    h > 23 ||
    mi > 59 ||
    s > 59
  ) {
    throw new CertificateFormatError(`${what}: impossible calendar date`);
  }
  return date;
}
