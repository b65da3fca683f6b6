import { hasSoftwareMagic } from "./simulated-evidence.js";
import { AttestationError, EvidenceFormatError, type EvidenceKind } from "./types.js";

/**
 * Recognise the kind of a piece of evidence from its bytes alone. This only routes the bytes to a
 * verifier; the verifier then parses strictly, so a wrong guess fails verification, never passes it.
 */
export interface KindGuess {
  kind: EvidenceKind;
  /** What in the bytes identified the kind. */
  reason: string;
}

export const SNP_REPORT_BYTES = 1184;
const DCAP_HEADER_BYTES = 48;
const INTEL_QE_VENDOR_ID = "939a7233f79c4ca9940a0db3957f0607";
const TEE_TYPE_SGX = 0x00000000;
const TEE_TYPE_TDX = 0x00000081;

function view(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

function snpGuess(b: Buffer): KindGuess | undefined {
  if (b.length !== SNP_REPORT_BYTES) return undefined;
  const version = b.readUInt32LE(0);
  const sigAlgo = b.readUInt32LE(0x34);
  if ((version === 2 || version === 3 || version === 5) && sigAlgo === 1) {
    return {
      kind: "snp",
      reason: `${SNP_REPORT_BYTES}-byte SNP report, version ${version}, ECDSA P-384 signature`,
    };
  }
  return undefined;
}

function dcapGuess(b: Buffer): KindGuess | undefined {
  if (b.length < DCAP_HEADER_BYTES) return undefined;
  const version = b.readUInt16LE(0);
  const keyType = b.readUInt16LE(2);
  const teeType = b.readUInt32LE(4);
  if (version < 3 || version > 5 || (keyType !== 2 && keyType !== 3)) return undefined;
  const vendor = b.subarray(12, 28).toString("hex");
  if (vendor !== INTEL_QE_VENDOR_ID) return undefined;
  if (teeType === TEE_TYPE_SGX) return { kind: "sgx", reason: `DCAP quote v${version}, TEE type SGX` };
  if (teeType === TEE_TYPE_TDX && version >= 4)
    return { kind: "tdx", reason: `DCAP quote v${version}, TEE type TDX` };
  return undefined;
}

function nitroGuess(b: Buffer): KindGuess | undefined {
  // COSE_Sign1: optionally tag 18 (0xd2), then an array of 4 whose first item is a byte string.
  let i = 0;
  if (b[0] === 0xd2) i = 1;
  if (b.length < i + 8 || b[i] !== 0x84) return undefined;
  const first = b[i + 1];
  if (first >= 0x40 && first <= 0x5b) return { kind: "nitro", reason: "COSE_Sign1 CBOR structure" };
  return undefined;
}

function spdmGuess(b: Buffer): KindGuess | undefined {
  // SPDM GET_MEASUREMENTS request (code 0xE0) followed by the response: the NVIDIA GPU evidence layout.
  if (b.length < 40) return undefined;
  if (b[0] >= 0x10 && b[0] <= 0x13 && b[1] === 0xe0) {
    return { kind: "nvidia", reason: `SPDM ${b[0] >> 4}.${b[0] & 0xf} GET_MEASUREMENTS transcript` };
  }
  return undefined;
}

export function guessEvidenceKind(bytes: Uint8Array): KindGuess | undefined {
  if (!(bytes instanceof Uint8Array)) return undefined;
  if (hasSoftwareMagic(bytes)) {
    const label = bytes.length > 10 ? bytes[10] : 0;
    if (label === 1) return { kind: "simulated", reason: "CRSN-EVD magic, label SIMULATED" };
    if (label === 2) return { kind: "insecure", reason: "CRSN-EVD magic, label INSECURE" };
    return undefined;
  }
  const b = view(bytes);
  return snpGuess(b) ?? dcapGuess(b) ?? nitroGuess(b) ?? spdmGuess(b);
}

/** Like guessEvidenceKind, but throws a typed error naming what was looked for. */
export function detectEvidenceKind(bytes: Uint8Array): KindGuess {
  const g = guessEvidenceKind(bytes);
  if (!g) {
    throw new AttestationError(
      "kind",
      "unrecognised format: not an SNP report, a DCAP quote (SGX/TDX), a Nitro COSE_Sign1 document, " +
        "an NVIDIA SPDM transcript or CRSN-EVD evidence; pass --kind to name it",
      "EVIDENCE_UNRECOGNISED",
    );
  }
  return g;
}

/**
 * Evidence files are binary, but vendors also ship them as hex text (NVIDIA's samples) or base64
 * (Nitro's). Return the binary form: the bytes themselves when they are already a known format,
 * else the hex or base64 decoding when that yields one.
 */
export function decodeEvidenceText(bytes: Uint8Array): Uint8Array {
  if (guessEvidenceKind(bytes)) return bytes;
  if (bytes.length > 16 * 1024 * 1024) return bytes;
  const text = Buffer.from(bytes).toString("latin1").replace(/\s+/g, "");
  if (/^([0-9a-fA-F]{2})+$/.test(text)) {
    const decoded = new Uint8Array(Buffer.from(text, "hex"));
    if (guessEvidenceKind(decoded)) return decoded;
  }
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) {
    const decoded = new Uint8Array(Buffer.from(text, "base64"));
    if (guessEvidenceKind(decoded)) return decoded;
  }
  return bytes;
}

/**
 * The 64-byte report-data field of an SNP report or an SGX/TDX DCAP quote, located by fixed offsets
 * (used by providers to confirm the hardware signed what they asked for; verifiers parse fully).
 */
export function reportDataField(kind: "snp" | "tdx" | "sgx", bytes: Uint8Array): Uint8Array {
  const b = view(bytes);
  let at: number;
  if (kind === "snp") {
    at = 0x50;
    if (b.length < SNP_REPORT_BYTES) throw new EvidenceFormatError("snp", "report shorter than 1184 bytes");
  } else {
    if (b.length < DCAP_HEADER_BYTES) throw new EvidenceFormatError(kind, "quote shorter than its header");
    const version = b.readUInt16LE(0);
    // v3/v4: the body follows the header; v5: a 2-byte body type and 4-byte body size come first.
    const body = version === 5 ? DCAP_HEADER_BYTES + 6 : DCAP_HEADER_BYTES;
    at = body + (kind === "sgx" ? 320 : 520);
  }
  if (b.length < at + 64) throw new EvidenceFormatError(kind, "too short to hold report data");
  return new Uint8Array(b.subarray(at, at + 64));
}
