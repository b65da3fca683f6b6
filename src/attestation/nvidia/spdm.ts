import { EvidenceFormatError } from "../types.js";

/**
 * DMTF SPDM 1.1 (DSP0274 1.1) GET_MEASUREMENTS request and signed MEASUREMENTS response, as an
 * NVIDIA H100 returns them for attestation: request || response, where the response ends with a
 * raw ECDSA P-384 signature over SHA-384 of every preceding byte (the L1 transcript).
 * Every length is checked against the bytes that are actually there; nothing is skipped.
 */

export const SPDM_VERSION_1_1 = 0x11;
export const GET_MEASUREMENTS = 0xe0;
export const MEASUREMENTS = 0x60;
export const REQUEST_BYTES = 37;
export const NONCE_BYTES = 32;
/** SPDM 1.1 caps OpaqueLength at 1024. */
export const MAX_OPAQUE_BYTES = 1024;
/** Hopper signs with ECDSA P-384: raw r||s. */
export const HOPPER_SIGNATURE_BYTES = 96;
/**
 * Unsigned bytes accepted after the signature. Evidence as Confidential Containers tooling collects
 * it can carry a few bytes there; NVIDIA's verifier and trustee's ignore them. They are outside
 * the signed transcript, so they are never interpreted, only counted and reported as a warning;
 * more than this bound is refused as malformed.
 */
export const MAX_TRAILING_BYTES = 64;
/** DMTF measurement specification bit (MeasurementSpecification = 1). */
const DMTF_SPECIFICATION = 0x01;

export interface SpdmMeasurementsRequest {
  version: number;
  /** Bit 0: signature requested. */
  param1: number;
  /** Measurement operation; 0xFF = all measurements. */
  param2: number;
  nonce: Uint8Array;
  slotId: number;
}

export interface MeasurementBlock {
  /** SPDM measurement index, 1-based (NVIDIA RIM index + 1). */
  index: number;
  specification: number;
  /** DMTFSpecMeasurementValueType (bit 7: raw bit stream rather than digest). */
  dmtfType: number;
  value: Uint8Array;
}

export interface OpaqueField {
  type: number;
  value: Uint8Array;
}

export interface SpdmMeasurementsResponse {
  version: number;
  param1: number;
  param2: number;
  numberOfBlocks: number;
  /** The raw MeasurementRecord (all blocks as signed). */
  measurementRecord: Uint8Array;
  blocks: MeasurementBlock[];
  /** Responder nonce. */
  nonce: Uint8Array;
  opaqueData: Uint8Array;
  opaqueFields: OpaqueField[];
  signature: Uint8Array;
  /** Unsigned bytes after the signature (at most MAX_TRAILING_BYTES); never interpreted. */
  trailing: Uint8Array;
}

export interface SpdmMeasurementsExchange {
  request: SpdmMeasurementsRequest;
  response: SpdmMeasurementsResponse;
  /** request || response without the signature: the bytes the signature covers. */
  signedBytes: Uint8Array;
}

function malformed(message: string): EvidenceFormatError {
  return new EvidenceFormatError("nvidia", message);
}

class Cursor {
  pos = 0;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly what: string,
  ) {}
  get remaining(): number {
    return this.bytes.length - this.pos;
  }
  take(n: number, field: string): Uint8Array {
    if (n > this.remaining) throw malformed(`${this.what}.${field}: truncated`);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  u8(field: string): number {
    return this.take(1, field)[0];
  }
  u16(field: string): number {
    const b = this.take(2, field);
    return b[0] | (b[1] << 8);
  }
  u24(field: string): number {
    const b = this.take(3, field);
    return b[0] | (b[1] << 8) | (b[2] << 16);
  }
}

/** Parse request || response with the given signature length (96 for Hopper). */
export function parseSpdmMeasurementsExchange(
  bytes: Uint8Array,
  signatureBytes = HOPPER_SIGNATURE_BYTES,
): SpdmMeasurementsExchange {
  if (bytes.length < REQUEST_BYTES) throw malformed("GET_MEASUREMENTS request: truncated");
  const request = parseRequest(bytes.subarray(0, REQUEST_BYTES));
  const responseBytes = bytes.subarray(REQUEST_BYTES);
  const response = parseResponse(responseBytes, signatureBytes);
  if (response.version !== request.version) {
    throw malformed("MEASUREMENTS.SPDMVersion: differs from the request's version");
  }
  const signedLength = bytes.length - response.trailing.length - signatureBytes;
  const signedBytes = bytes.subarray(0, signedLength);
  return { request, response, signedBytes };
}

function parseRequest(bytes: Uint8Array): SpdmMeasurementsRequest {
  const c = new Cursor(bytes, "GET_MEASUREMENTS");
  const version = c.u8("SPDMVersion");
  if (version !== SPDM_VERSION_1_1)
    throw malformed("GET_MEASUREMENTS.SPDMVersion: only SPDM 1.1 (0x11) is accepted");
  if (c.u8("RequestResponseCode") !== GET_MEASUREMENTS) {
    throw malformed("GET_MEASUREMENTS.RequestResponseCode: must be 0xE0");
  }
  const param1 = c.u8("Param1");
  if (param1 !== 0x01) {
    throw malformed("GET_MEASUREMENTS.Param1: must request a signature (0x01) with reserved bits clear");
  }
  const param2 = c.u8("Param2");
  if (param2 !== 0xff) throw malformed("GET_MEASUREMENTS.Param2: must request all measurements (0xFF)");
  const nonce = c.take(NONCE_BYTES, "Nonce");
  const slotId = c.u8("SlotIDParam");
  if (slotId > 7) throw malformed("GET_MEASUREMENTS.SlotIDParam: slot must be 0..7 with reserved bits clear");
  return { version, param1, param2, nonce, slotId };
}

function parseResponse(bytes: Uint8Array, signatureBytes: number): SpdmMeasurementsResponse {
  const c = new Cursor(bytes, "MEASUREMENTS");
  const version = c.u8("SPDMVersion");
  if (c.u8("RequestResponseCode") !== MEASUREMENTS)
    throw malformed("MEASUREMENTS.RequestResponseCode: must be 0x60");
  // With Param2 = 0xFF in the request both parameters are reserved in SPDM 1.1.
  const param1 = c.u8("Param1");
  if (param1 !== 0) throw malformed("MEASUREMENTS.Param1: reserved, must be 0");
  const param2 = c.u8("Param2");
  if (param2 !== 0) throw malformed("MEASUREMENTS.Param2: reserved, must be 0");
  const numberOfBlocks = c.u8("NumberOfBlocks");
  if (numberOfBlocks === 0) throw malformed("MEASUREMENTS.NumberOfBlocks: must be at least 1");
  const recordLength = c.u24("MeasurementRecordLength");
  const measurementRecord = c.take(recordLength, "MeasurementRecord");
  const blocks = parseMeasurementRecord(measurementRecord, numberOfBlocks);
  const nonce = c.take(NONCE_BYTES, "Nonce");
  const opaqueLength = c.u16("OpaqueLength");
  if (opaqueLength > MAX_OPAQUE_BYTES)
    throw malformed(`MEASUREMENTS.OpaqueLength: exceeds ${MAX_OPAQUE_BYTES}`);
  const opaqueData = c.take(opaqueLength, "OpaqueData");
  const opaqueFields = parseOpaqueData(opaqueData);
  const signature = c.take(signatureBytes, "Signature");
  if (c.remaining > MAX_TRAILING_BYTES) {
    throw malformed(`MEASUREMENTS: more than ${MAX_TRAILING_BYTES} trailing bytes after the signature`);
  }
  const trailing = c.take(c.remaining, "trailing bytes");
  return {
    version,
    param1,
    param2,
    numberOfBlocks,
    measurementRecord,
    blocks,
    nonce,
    opaqueData,
    opaqueFields,
    signature,
    trailing,
  };
}

function parseMeasurementRecord(record: Uint8Array, numberOfBlocks: number): MeasurementBlock[] {
  const c = new Cursor(record, "MeasurementRecord");
  const blocks: MeasurementBlock[] = [];
  const seen = new Set<number>();
  for (let n = 0; n < numberOfBlocks; n++) {
    const where = `block[${n}]`;
    const index = c.u8(`${where}.Index`);
    if (index === 0 || index === 0xff)
      throw malformed(`MeasurementRecord.${where}.Index: 0 and 0xFF are reserved`);
    if (seen.has(index)) throw malformed(`MeasurementRecord.${where}.Index: duplicate index`);
    seen.add(index);
    const specification = c.u8(`${where}.MeasurementSpecification`);
    if (specification !== DMTF_SPECIFICATION) {
      throw malformed(`MeasurementRecord.${where}.MeasurementSpecification: must be DMTF (1)`);
    }
    const size = c.u16(`${where}.MeasurementSize`);
    const measurement = c.take(size, `${where}.Measurement`);
    const m = new Cursor(measurement, `MeasurementRecord.${where}`);
    const dmtfType = m.u8("DMTFSpecMeasurementValueType");
    const valueSize = m.u16("DMTFSpecMeasurementValueSize");
    if (valueSize !== size - 3) {
      throw malformed(
        `MeasurementRecord.${where}.DMTFSpecMeasurementValueSize: disagrees with MeasurementSize`,
      );
    }
    const value = m.take(valueSize, "DMTFSpecMeasurementValue");
    blocks.push({ index, specification, dmtfType, value });
  }
  if (c.remaining !== 0) {
    throw malformed("MeasurementRecord: length disagrees with the blocks it contains");
  }
  return blocks;
}

/** NVIDIA opaque data: a sequence of [type u16 LE | size u16 LE | value] that fills the field exactly. */
function parseOpaqueData(bytes: Uint8Array): OpaqueField[] {
  const c = new Cursor(bytes, "OpaqueData");
  const fields: OpaqueField[] = [];
  const seen = new Set<number>();
  while (c.remaining > 0) {
    const where = `field[${fields.length}]`;
    const type = c.u16(`${where}.DataType`);
    if (seen.has(type)) throw malformed(`OpaqueData.${where}.DataType: duplicate field type ${type}`);
    seen.add(type);
    const size = c.u16(`${where}.DataSize`);
    fields.push({ type, value: c.take(size, `${where}.Data`) });
  }
  return fields;
}
