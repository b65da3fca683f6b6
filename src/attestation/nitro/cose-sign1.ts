import { verify as cryptoVerify, type KeyObject } from "node:crypto";
import { EvidenceFormatError } from "../types.js";
import {
  CborError,
  concatBytes,
  decodeCbor,
  encodeBytes,
  encodeHead,
  encodeText,
  type CborItem,
} from "./cbor.js";

/**
 * COSE_Sign1 (RFC 9052 section 4.2) as AWS Nitro uses it: protected header {1: -35} (ES384),
 * an unprotected header (empty from the NSM; any map is accepted and ignored, as it is unsigned), an embedded payload and a 96-byte raw r||s ECDSA P-384 signature.
 */
export interface CoseSign1 {
  /** True when the message carried CBOR tag 18. */
  tagged: boolean;
  /** The serialized protected header exactly as received (it is signed as these bytes). */
  protectedBytes: Uint8Array;
  /** COSE algorithm id from the protected header (always -35 here). */
  alg: number;
  /** Parameters in the unsigned unprotected header (0 from the NSM); never interpreted. */
  unprotectedEntries: number;
  payload: Uint8Array;
  signature: Uint8Array;
}

export const COSE_ALG_ES384 = -35;
const COSE_HEADER_ALG = 1n;
const COSE_SIGN1_TAG = 18;
export const ES384_SIGNATURE_BYTES = 96;
/** AWS: the attestation document payload is bstr .size (1..16384). */
export const MAX_PAYLOAD_BYTES = 16384;

function malformed(message: string): EvidenceFormatError {
  return new EvidenceFormatError("nitro", message);
}

function decode(bytes: Uint8Array, what: string, tags: readonly number[] = []): CborItem {
  try {
    return decodeCbor(bytes, { allowedTopLevelTags: tags });
  } catch (error) {
    if (error instanceof CborError) throw malformed(`${what}: ${error.message}`);
    throw error;
  }
}

/** Parse a (tagged or untagged) COSE_Sign1 message and its protected header. */
export function parseCoseSign1(bytes: Uint8Array): CoseSign1 {
  let top = decode(bytes, "COSE_Sign1", [COSE_SIGN1_TAG]);
  let tagged = false;
  if (top.type === "tag") {
    tagged = true;
    top = top.item;
  }
  if (top.type !== "array" || top.items.length !== 4) {
    throw malformed("COSE_Sign1: must be an array of 4 items");
  }
  const [prot, unprot, payload, signature] = top.items;
  if (prot.type !== "bytes") throw malformed("COSE_Sign1.protected: must be a byte string");
  if (unprot.type !== "map") throw malformed("COSE_Sign1.unprotected: must be a map");
  // AWS's NSM sends an empty map; AWS's COSE library and nitrite accept any map here. It is not
  // signed, so its entries are counted and reported, never read.
  if (payload.type !== "bytes") {
    throw malformed("COSE_Sign1.payload: must be an embedded byte string (detached payloads not accepted)");
  }
  if (payload.value.length < 1 || payload.value.length > MAX_PAYLOAD_BYTES) {
    throw malformed(`COSE_Sign1.payload: length must be in [1, ${MAX_PAYLOAD_BYTES}]`);
  }
  if (signature.type !== "bytes") throw malformed("COSE_Sign1.signature: must be a byte string");
  if (signature.value.length !== ES384_SIGNATURE_BYTES) {
    throw malformed(`COSE_Sign1.signature: must be ${ES384_SIGNATURE_BYTES} bytes (ES384 r||s)`);
  }
  const alg = parseProtectedHeader(prot.value);
  return {
    tagged,
    protectedBytes: prot.value,
    alg,
    unprotectedEntries: unprot.entries.length,
    payload: payload.value,
    signature: signature.value,
  };
}

/** The protected header must be exactly {1: -35}; unknown parameters (e.g. crit) fail closed. */
function parseProtectedHeader(bytes: Uint8Array): number {
  if (bytes.length === 0) throw malformed("COSE_Sign1.protected: must not be empty (alg is required)");
  const header = decode(bytes, "COSE_Sign1.protected");
  if (header.type !== "map") throw malformed("COSE_Sign1.protected: must encode a map");
  if (header.entries.length !== 1) {
    throw malformed("COSE_Sign1.protected: must contain exactly the alg parameter");
  }
  const [key, value] = header.entries[0];
  if (key.type !== "uint" || key.value !== COSE_HEADER_ALG) {
    throw malformed("COSE_Sign1.protected: must contain exactly the alg parameter (label 1)");
  }
  if (value.type !== "nint" || value.value !== BigInt(COSE_ALG_ES384)) {
    throw malformed("COSE_Sign1.protected.alg: must be -35 (ES384)");
  }
  return COSE_ALG_ES384;
}

/** Sig_structure = ["Signature1", body_protected, external_aad = h'', payload] (RFC 9052 4.4). */
export function sigStructure(message: CoseSign1, externalAad: Uint8Array = new Uint8Array(0)): Uint8Array {
  return concatBytes([
    encodeHead(4, 4),
    encodeText("Signature1"),
    encodeBytes(message.protectedBytes),
    encodeBytes(externalAad),
    encodeBytes(message.payload),
  ]);
}

/** Verify the ES384 signature (SHA-384, P-384, raw r||s) over the Sig_structure. */
export function verifyCoseSign1Es384(message: CoseSign1, publicKey: KeyObject): boolean {
  if (message.alg !== COSE_ALG_ES384) return false;
  if (publicKey.asymmetricKeyType !== "ec" || publicKey.asymmetricKeyDetails?.namedCurve !== "secp384r1") {
    return false;
  }
  const toBeSigned = sigStructure(message);
  return cryptoVerify("sha384", toBeSigned, { key: publicKey, dsaEncoding: "ieee-p1363" }, message.signature);
}
