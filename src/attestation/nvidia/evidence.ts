import { EvidenceFormatError } from "../types.js";
import { decodeOpaqueData, type NvidiaOpaqueData } from "./opaque.js";
import {
  HOPPER_SIGNATURE_BYTES,
  parseSpdmMeasurementsExchange,
  type SpdmMeasurementsExchange,
} from "./spdm.js";

/** A parsed NVIDIA GPU attestation report (SPDM GET_MEASUREMENTS request || signed response). */
export interface NvidiaEvidence extends SpdmMeasurementsExchange {
  /** The report bytes as given. */
  raw: Uint8Array;
  opaque: NvidiaOpaqueData;
}

/** Far above a Hopper report (about 4 KiB) yet small enough to bound work on hostile input. */
export const MAX_EVIDENCE_BYTES = 64 * 1024;

function malformed(message: string): EvidenceFormatError {
  return new EvidenceFormatError("nvidia", message);
}

/**
 * Parse an H100 attestation report: raw bytes, or text in the encodings verifiers exchange it in
 * (hex as nvtrust's and trustee's samples, base64 as nvtrust's SDK sends it), given as a string or
 * as the text's bytes. Throws EvidenceFormatError naming the field.
 */
export function parseNvidiaEvidence(evidence: Uint8Array | string): NvidiaEvidence {
  const raw = toBytes(evidence);
  if (raw.length === 0) throw malformed("report is empty");
  if (raw.length > MAX_EVIDENCE_BYTES) throw malformed(`report exceeds ${MAX_EVIDENCE_BYTES} bytes`);
  const exchange = parseSpdmMeasurementsExchange(raw, HOPPER_SIGNATURE_BYTES);
  return { ...exchange, raw, opaque: decodeOpaqueData(exchange.response.opaqueFields) };
}

const TEXT_BYTE = /^[0-9A-Za-z+/=\s]*$/;

function toBytes(evidence: Uint8Array | string): Uint8Array {
  if (evidence instanceof Uint8Array) {
    // A binary report starts 0x11 0xE0, which is never text; text is decoded, anything else parsed.
    if (evidence.length > 4 * MAX_EVIDENCE_BYTES)
      throw malformed(`report exceeds ${MAX_EVIDENCE_BYTES} bytes`);
    const latin1 = Buffer.from(evidence).toString("latin1");
    return evidence.length > 0 && TEXT_BYTE.test(latin1) ? fromText(latin1) : evidence;
  }
  if (typeof evidence !== "string") throw malformed("report must be bytes or text");
  return fromText(evidence);
}

function fromText(input: string): Uint8Array {
  if (input.length > 4 * MAX_EVIDENCE_BYTES) throw malformed(`report exceeds ${MAX_EVIDENCE_BYTES} bytes`);
  const text = input.trim();
  if (/^(?:[0-9a-fA-F]{2})*$/.test(text)) return new Uint8Array(Buffer.from(text, "hex"));
  const b64 = text.replace(/\s+/g, "");
  if (/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(b64)) {
    return new Uint8Array(Buffer.from(b64, "base64"));
  }
  throw malformed("report text must be hex or base64");
}
