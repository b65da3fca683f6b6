import {
  CertificateFormatError,
  decodeSmallUnsigned,
  decodeString,
  DerTag,
  findExtension,
  readDerElement,
  readDerExact,
  type ParsedCertificate,
} from "../pki/index.js";

/**
 * AMD KDS X.509 extensions of a VCEK/VLEK certificate ("Versioned Chip Endorsement Key (VCEK)
 * Certificate and KDS Interface Specification"; VLEK spec for cspID).
 */
export const KDS_OID = {
  structVersion: "1.3.6.1.4.1.3704.1.1",
  productName: "1.3.6.1.4.1.3704.1.2",
  blSpl: "1.3.6.1.4.1.3704.1.3.1",
  teeSpl: "1.3.6.1.4.1.3704.1.3.2",
  snpSpl: "1.3.6.1.4.1.3704.1.3.3",
  spl4: "1.3.6.1.4.1.3704.1.3.4",
  spl5: "1.3.6.1.4.1.3704.1.3.5",
  spl6: "1.3.6.1.4.1.3704.1.3.6",
  spl7: "1.3.6.1.4.1.3704.1.3.7",
  ucodeSpl: "1.3.6.1.4.1.3704.1.3.8",
  fmcSpl: "1.3.6.1.4.1.3704.1.3.9",
  hwId: "1.3.6.1.4.1.3704.1.4",
  cspId: "1.3.6.1.4.1.3704.1.5",
} as const;

export interface VekExtensions {
  structVersion?: number;
  /** e.g. "Milan-B0" (VCEK) or "Milan" (VLEK). */
  productName?: string;
  blSpl?: number;
  teeSpl?: number;
  snpSpl?: number;
  spl4?: number;
  spl5?: number;
  spl6?: number;
  spl7?: number;
  ucodeSpl?: number;
  fmcSpl?: number;
  /** VCEK only: the CHIP_ID the key is bound to (64 bytes; 8 bytes on Turin). */
  hwId?: Uint8Array;
  /** VLEK only: the cloud provider the key was loaded for, e.g. "CN=cc-us-east-2.amazonaws.com". */
  cspId?: string;
}

/** Reads the KDS extensions; throws CertificateFormatError on a malformed value. */
export function parseVekExtensions(cert: ParsedCertificate): VekExtensions {
  const out: VekExtensions = {};
  const ext = (oid: string) => findExtension(cert, oid)?.value;
  const int = (oid: string, name: string): number | undefined => {
    const v = ext(oid);
    if (!v) return undefined;
    const n = decodeSmallUnsigned(
      readDerExact(v, DerTag.INTEGER, `VEK extension ${name}`),
      `VEK extension ${name}`,
    );
    return n;
  };
  const str = (oid: string, name: string): string | undefined => {
    const v = ext(oid);
    if (!v) return undefined;
    return decodeString(readDerElementExactAnyTag(v, `VEK extension ${name}`), `VEK extension ${name}`);
  };
  const assign = <K extends keyof VekExtensions>(k: K, v: VekExtensions[K] | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  assign("structVersion", int(KDS_OID.structVersion, "structVersion"));
  assign("productName", str(KDS_OID.productName, "productName"));
  assign("blSpl", spl(int(KDS_OID.blSpl, "blSPL"), "blSPL"));
  assign("teeSpl", spl(int(KDS_OID.teeSpl, "teeSPL"), "teeSPL"));
  assign("snpSpl", spl(int(KDS_OID.snpSpl, "snpSPL"), "snpSPL"));
  assign("spl4", spl(int(KDS_OID.spl4, "spl_4"), "spl_4"));
  assign("spl5", spl(int(KDS_OID.spl5, "spl_5"), "spl_5"));
  assign("spl6", spl(int(KDS_OID.spl6, "spl_6"), "spl_6"));
  assign("spl7", spl(int(KDS_OID.spl7, "spl_7"), "spl_7"));
  assign("ucodeSpl", spl(int(KDS_OID.ucodeSpl, "ucodeSPL"), "ucodeSPL"));
  assign("fmcSpl", spl(int(KDS_OID.fmcSpl, "fmcSPL"), "fmcSPL"));
  assign("cspId", str(KDS_OID.cspId, "cspID"));
  const hw = ext(KDS_OID.hwId);
  if (hw) out.hwId = decodeHwId(hw);
  return out;
}

/** SPL values are single TCB bytes. */
function spl(v: number | undefined, name: string): number | undefined {
  if (v !== undefined && v > 0xff)
    throw new CertificateFormatError(`VEK extension ${name}: exceeds one byte`);
  return v;
}

/**
 * hwID is the raw CHIP_ID (64 bytes, or 8 on Turin); some issuers wrap it in an OCTET STRING.
 * The two forms cannot be confused: a wrapped value is 2 bytes longer than either raw size.
 */
function decodeHwId(value: Uint8Array): Uint8Array {
  if (value.length === 64 || value.length === 8) return value.slice();
  if (value[0] === DerTag.OCTET_STRING) {
    const inner = readDerExact(value, DerTag.OCTET_STRING, "VEK extension hwID").content;
    if (inner.length === 64 || inner.length === 8) return inner.slice();
  }
  throw new CertificateFormatError("VEK extension hwID: must be 64 or 8 bytes");
}

function readDerElementExactAnyTag(bytes: Uint8Array, what: string) {
  const el = readDerElement(bytes, 0, what);
  if (el.end !== bytes.length) throw new CertificateFormatError(`${what}: trailing bytes`);
  return el;
}
