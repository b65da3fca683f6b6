import {
  decodeOid,
  derChildren,
  DerTag,
  findExtension,
  readDerExact,
  type DerElement,
  type ParsedCertificate,
} from "../pki/index.js";

/** TCG DICE TcbInfo extension (tcg-dice-TcbInfo), which carries the firmware ids (FWIDs). */
export const TCG_DICE_TCBINFO_OID = "2.23.133.5.4.1";

const HASH_LENGTHS: Record<string, number> = {
  "2.16.840.1.101.3.4.2.1": 32, // sha256
  "2.16.840.1.101.3.4.2.2": 48, // sha384
  "2.16.840.1.101.3.4.2.3": 64, // sha512
};
const SHA384_OID = "2.16.840.1.101.3.4.2.2";

export type FwidLookup = { ok: true; fwid: string } | { ok: false; reason: string };

/**
 * The SHA-384 FWID in a certificate's TCG DICE TcbInfo extension. An FWID is a
 * SEQUENCE { hashAlg OID, digest OCTET STRING }; the walk finds it in the standard TcbInfo
 * ([6] fwids) as well as in the layout NVIDIA's GSP FMC certificates use. Exactly one SHA-384
 * FWID must be present, and it must be the extension's last 48 bytes, which is where nvtrust
 * and trustee read it from, so both readings always agree.
 */
export function fwidFromCertificate(cert: ParsedCertificate): FwidLookup {
  const ext = findExtension(cert, TCG_DICE_TCBINFO_OID);
  if (!ext) return { ok: false, reason: "leaf certificate has no TCG DICE FWID extension (2.23.133.5.4.1)" };
  let found: Uint8Array[];
  try {
    found = [];
    collectFwids(readDerExact(ext.value, DerTag.SEQUENCE, "TcbInfo"), found, 0);
  } catch {
    return { ok: false, reason: "TCG DICE FWID extension is not well-formed DER" };
  }
  const sha384 = found.filter((d) => d.length === 48);
  if (sha384.length !== 1) return { ok: false, reason: "FWID extension must hold exactly one SHA-384 FWID" };
  const tail = ext.value.subarray(ext.value.length - 48);
  if (!Buffer.from(tail).equals(Buffer.from(sha384[0]))) {
    return { ok: false, reason: "SHA-384 FWID is not at the end of the extension" };
  }
  return { ok: true, fwid: Buffer.from(sha384[0]).toString("hex") };
}

function collectFwids(el: DerElement, out: Uint8Array[], depth: number): void {
  if (depth > 8 || !el.constructed) return;
  const children = derChildren(el, "TcbInfo");
  if (
    el.tag === DerTag.SEQUENCE &&
    children.length === 2 &&
    children[0].tag === DerTag.OID &&
    children[1].tag === DerTag.OCTET_STRING
  ) {
    const oid = decodeOid(children[0], "TcbInfo.fwid.hashAlg");
    const size = HASH_LENGTHS[oid];
    if (size !== undefined && children[1].content.length === size) {
      if (oid === SHA384_OID) out.push(children[1].content);
      return;
    }
  }
  for (const child of children) collectFwids(child, out, depth + 1);
}
