import {
  CertificateFormatError,
  decodeSmallUnsigned,
  decodeOid,
  derChildren,
  DerTag,
  expectTag,
  findExtension,
  readDerExact,
  type DerElement,
  type ParsedCertificate,
} from "../pki/index.js";

/** Intel SGX extension on PCK certificates ("SGX PCK Certificate and CRL Profile"). */
export const SGX_EXTENSION_OID = "1.2.840.113741.1.13.1";

/** The platform identity Intel binds into a PCK certificate. */
export interface PckExtensions {
  ppid: Uint8Array;
  /** SGX TCB component SVNs 1..16 (index 0 = component 1). */
  tcbComponents: number[];
  pceSvn: number;
  cpuSvn: Uint8Array;
  pceId: Uint8Array;
  fmspc: Uint8Array;
  /** 0 Standard, 1 Scalable, 2 Scalable with integrity. */
  sgxType: number;
}

const ENUMERATED = 0x0a;

/** Reads the SGX extension of a PCK leaf; throws CertificateFormatError naming the field. */
export function parsePckExtensions(cert: ParsedCertificate): PckExtensions {
  const ext = findExtension(cert, SGX_EXTENSION_OID);
  if (!ext) throw new CertificateFormatError("PCK certificate: SGX extension is missing");
  const items = namedItems(readDerExact(ext.value, DerTag.SEQUENCE, "sgxExtensions"), "sgxExtensions");
  const need = (arc: number, name: string): DerElement => {
    const el = items.get(`${SGX_EXTENSION_OID}.${arc}`);
    if (!el) throw new CertificateFormatError(`sgxExtensions.${name}: missing`);
    return el;
  };
  const octets = (el: DerElement, size: number, name: string): Uint8Array => {
    expectTag(el, DerTag.OCTET_STRING, `sgxExtensions.${name}`);
    if (el.content.length !== size)
      throw new CertificateFormatError(`sgxExtensions.${name}: expected ${size} bytes`);
    return el.content;
  };

  const tcbEl = need(2, "tcb");
  expectTag(tcbEl, DerTag.SEQUENCE, "sgxExtensions.tcb");
  const tcb = namedItems(tcbEl, "sgxExtensions.tcb");
  const tcbComponents: number[] = [];
  for (let n = 1; n <= 16; n++) {
    const el = tcb.get(`${SGX_EXTENSION_OID}.2.${n}`);
    if (!el) throw new CertificateFormatError(`sgxExtensions.tcb.comp${n}svn: missing`);
    tcbComponents.push(svn(el, `sgxExtensions.tcb.comp${n}svn`, 255));
  }
  const pceSvnEl = tcb.get(`${SGX_EXTENSION_OID}.2.17`);
  const cpuSvnEl = tcb.get(`${SGX_EXTENSION_OID}.2.18`);
  if (!pceSvnEl) throw new CertificateFormatError("sgxExtensions.tcb.pcesvn: missing");
  if (!cpuSvnEl) throw new CertificateFormatError("sgxExtensions.tcb.cpusvn: missing");

  const typeEl = need(5, "sgxType");
  if (typeEl.tag !== ENUMERATED || typeEl.content.length !== 1 || typeEl.content[0] > 2) {
    throw new CertificateFormatError("sgxExtensions.sgxType: expected ENUMERATED 0..2");
  }
  return {
    ppid: octets(need(1, "ppid"), 16, "ppid"),
    tcbComponents,
    pceSvn: svn(pceSvnEl, "sgxExtensions.tcb.pcesvn", 0xffff),
    cpuSvn: octets(cpuSvnEl, 16, "tcb.cpusvn"),
    pceId: octets(need(3, "pceId"), 2, "pceId"),
    fmspc: octets(need(4, "fmspc"), 6, "fmspc"),
    sgxType: typeEl.content[0],
  };
}

/** SEQUENCE OF SEQUENCE { OID, value } as a map; duplicate OIDs are ambiguous and rejected. */
function namedItems(seq: DerElement, what: string): Map<string, DerElement> {
  const out = new Map<string, DerElement>();
  for (const item of derChildren(seq, what)) {
    expectTag(item, DerTag.SEQUENCE, what);
    const parts = derChildren(item, what);
    if (parts.length !== 2) throw new CertificateFormatError(`${what}: expected OID and value`);
    const oid = decodeOid(parts[0], what);
    if (out.has(oid)) throw new CertificateFormatError(`${what}: duplicate item ${oid}`);
    out.set(oid, parts[1]);
  }
  return out;
}

function svn(el: DerElement, what: string, max: number): number {
  const v = decodeSmallUnsigned(el, what);
  if (v > max) throw new CertificateFormatError(`${what}: out of range`);
  return v;
}
