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
 * Parse an H100 attestation report: raw bytes, or the hex text nvtrust and trustee exchange
 * (surrounding whitespace allowed; nothing else). Throws EvidenceFormatError naming the field.
 */
export function parseNvidiaEvidence(evidence: Uint8Array | string): NvidiaEvidence {
  const raw = toBytes(evidence);
  if (raw.length === 0) throw malformed("report is empty");
  if (raw.length > MAX_EVIDENCE_BYTES) throw malformed(`report exceeds ${MAX_EVIDENCE_BYTES} bytes`);
  const exchange = parseSpdmMeasurementsExchange(raw, HOPPER_SIGNATURE_BYTES);
  return { ...exchange, raw, opaque: decodeOpaqueData(exchange.response.opaqueFields) };
}

function toBytes(evidence: Uint8Array | string): Uint8Array {
  if (evidence instanceof Uint8Array) return evidence;
  if (typeof evidence !== "string") throw malformed("report must be bytes or a hex string");
  const text = evidence.trim();
  if (text.length > 2 * MAX_EVIDENCE_BYTES) throw malformed(`report exceeds ${MAX_EVIDENCE_BYTES} bytes`);
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(text))
    throw malformed("report text must be an even number of hex digits");
  return new Uint8Array(Buffer.from(text, "hex"));
}
