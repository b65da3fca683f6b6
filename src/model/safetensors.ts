import { createHash } from "node:crypto";
import { EnclaveError } from "../errors.js";
import { sizeOf, tensor, type TensorMap } from "../tensor/tensor.js";

/**
 * safetensors (the format `safetensors.torch.load_file` reads): an 8-byte little-endian header
 * length, a JSON header, then the raw little-endian data. Serialisation is deterministic:
 * tensors sorted by name, metadata keys sorted, header padded with spaces to 8 bytes, so the
 * same weights always produce the same bytes and the same hash.
 */

const MAX_HEADER_BYTES = 16 * 1024 * 1024;

export class SafetensorsError extends EnclaveError {
  constructor(message: string) {
    super("SAFETENSORS_INVALID", `safetensors: ${message}`);
  }
}

export function serializeSafetensors(weights: TensorMap, metadata?: Record<string, string>): Uint8Array {
  const names = [...weights.keys()].sort();
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    header.__metadata__ = Object.fromEntries(
      Object.keys(metadata)
        .sort()
        .map((k) => [k, metadata[k]]),
    );
  }
  let offset = 0;
  for (const name of names) {
    if (name === "__metadata__")
      throw new SafetensorsError(`"__metadata__" is reserved and cannot name a tensor`);
    const t = weights.get(name)!;
    const bytes = t.data.length * 4;
    header[name] = { dtype: "F32", shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  const raw = new TextEncoder().encode(json);
  const padded = Math.ceil(raw.length / 8) * 8;
  json += " ".repeat(padded - raw.length);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const name of names) {
    const d = weights.get(name)!.data;
    for (let i = 0; i < d.length; i++, pos += 4) view.setFloat32(pos, d[i], true);
  }
  return out;
}

export interface ParsedSafetensors {
  tensors: TensorMap;
  metadata: Record<string, string>;
}

/** Parse and validate a safetensors file: F32 tensors only, contiguous non-overlapping offsets. */
export function parseSafetensors(bytes: Uint8Array): ParsedSafetensors {
  if (bytes.length < 8) throw new SafetensorsError("file shorter than its 8-byte header length");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(Math.min(MAX_HEADER_BYTES, bytes.length - 8)))
    throw new SafetensorsError("header length exceeds the file");
  const headerLen = Number(n);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLen)));
  } catch {
    throw new SafetensorsError("header is not valid UTF-8 JSON");
  }
  if (typeof header !== "object" || header === null || Array.isArray(header))
    throw new SafetensorsError("header is not an object");
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (typeof value !== "object" || value === null)
        throw new SafetensorsError("__metadata__ must be an object");
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== "string") throw new SafetensorsError(`metadata "${k}" must be a string`);
        metadata[k] = v;
      }
      continue;
    }
    const e = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e?.dtype !== "F32") throw new SafetensorsError(`tensor "${name}": only dtype F32 is supported`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(`tensor "${name}": shape must be a list of non-negative integers`);
    }
    const off = e.data_offsets;
    if (
      !Array.isArray(off) ||
      off.length !== 2 ||
      !off.every((d) => Number.isSafeInteger(d) && d >= 0) ||
      off[0] > off[1]
    ) {
      throw new SafetensorsError(`tensor "${name}": data_offsets must be [begin, end] with begin <= end`);
    }
    if (off[1] - off[0] !== sizeOf(e.shape) * 4)
      throw new SafetensorsError(`tensor "${name}": data_offsets do not match its shape`);
    entries.push({ name, shape: e.shape as number[], begin: off[0], end: off[1] });
  }
  // The data buffer must be covered exactly once, with no gaps or overlaps.
  entries.sort((a, b) => a.begin - b.begin);
  let expected = 0;
  for (const e of entries) {
    if (e.begin !== expected) throw new SafetensorsError(`tensor "${e.name}": data is not contiguous`);
    expected = e.end;
  }
  if (expected !== dataLen)
    throw new SafetensorsError(`data section is ${dataLen} bytes, tensors cover ${expected}`);
  const tensors: TensorMap = new Map();
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const data = new Float32Array((e.end - e.begin) / 4);
    for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(dataStart + e.begin + 4 * i, true);
    tensors.set(e.name, tensor(e.shape, data));
  }
  return { tensors, metadata };
}

/** SHA-256 of the deterministic serialisation: the model hash the audit ledger records. */
export function weightsHash(weights: TensorMap): string {
  return createHash("sha256").update(serializeSafetensors(weights)).digest("hex");
}
