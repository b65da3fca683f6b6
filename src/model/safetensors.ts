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

/** The dtypes read, with their width in bytes; all but F32 are converted to float32 on reading. */
const DTYPE_BYTES = { F32: 4, F16: 2, BF16: 2, F64: 8 } as const;
export type SafetensorsDtype = keyof typeof DTYPE_BYTES;

export interface ParsedSafetensors {
  tensors: TensorMap;
  metadata: Record<string, string>;
  /** Tensors stored in another dtype and converted to float32 (F64 loses precision), by name. */
  converted: { name: string; dtype: Exclude<SafetensorsDtype, "F32"> }[];
}

/**
 * The header as the reference implementation reads it, stricter than JSON.parse: an object
 * (it starts with `{`), no key twice in one object (JSON.parse keeps the last), and every number
 * a plain non-negative integer (shapes and offsets are `usize`: `4.0`, `4e0` and `-0` are refused).
 */
function assertStrictHeader(text: string): void {
  if (text[0] !== "{") throw new SafetensorsError("header must start with '{'");
  const keys: (Set<string> | null)[] = []; // per open container: its keys (null for arrays)
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "{" || c === "[") {
      keys.push(c === "{" ? new Set() : null);
      expectKey = c === "{";
    } else if (c === "}" || c === "]") {
      keys.pop();
      expectKey = false;
    } else if (c === ",") {
      expectKey = keys.at(-1) instanceof Set;
    } else if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        const seen = keys.at(-1)!;
        if (seen.has(key)) throw new SafetensorsError(`header names "${key}" twice`);
        seen.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === "-" || (c >= "0" && c <= "9")) {
      const m = /^-?[0-9.eE+-]+/.exec(text.slice(i, i + 32))![0];
      if (!/^(0|[1-9][0-9]*)$/.test(m))
        throw new SafetensorsError("header numbers must be non-negative integers (shapes and offsets)");
      i += m.length - 1;
    }
  }
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

function readElement(view: DataView, pos: number, dtype: SafetensorsDtype): number {
  switch (dtype) {
    case "F32":
      return view.getFloat32(pos, true);
    case "F64":
      return view.getFloat64(pos, true);
    case "F16":
      return halfToFloat(view.getUint16(pos, true));
    case "BF16": {
      // bfloat16 is the top half of a float32.
      const scratch = new DataView(new ArrayBuffer(4));
      scratch.setUint32(0, view.getUint16(pos, true) << 16, true);
      return scratch.getFloat32(0, true);
    }
  }
}

/**
 * Parse and validate a safetensors file: F32, F16, BF16 or F64 tensors (the last three converted
 * to float32 and listed in `converted`), contiguous non-overlapping offsets, a strict header.
 */
export function parseSafetensors(bytes: Uint8Array): ParsedSafetensors {
  if (bytes.length < 8) throw new SafetensorsError("file shorter than its 8-byte header length");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(Math.min(MAX_HEADER_BYTES, bytes.length - 8)))
    throw new SafetensorsError("header length exceeds the file");
  const headerLen = Number(n);
  let header: Record<string, unknown>;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
    header = JSON.parse(text);
  } catch {
    throw new SafetensorsError("header is not valid UTF-8 JSON");
  }
  assertStrictHeader(text);
  if (typeof header !== "object" || header === null || Array.isArray(header))
    throw new SafetensorsError("header is not an object");
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] =
    [];
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
    if (typeof e?.dtype !== "string" || !Object.hasOwn(DTYPE_BYTES, e.dtype))
      throw new SafetensorsError(`tensor "${name}": dtype must be F32, F16, BF16 or F64`);
    const dtype = e.dtype as SafetensorsDtype;
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
    if (off[1] - off[0] !== sizeOf(e.shape) * DTYPE_BYTES[dtype])
      throw new SafetensorsError(`tensor "${name}": data_offsets do not match its shape`);
    entries.push({ name, dtype, shape: e.shape as number[], begin: off[0], end: off[1] });
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
  const converted: ParsedSafetensors["converted"] = [];
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const width = DTYPE_BYTES[e.dtype];
    const data = new Float32Array((e.end - e.begin) / width);
    for (let i = 0; i < data.length; i++)
      data[i] = readElement(view, dataStart + e.begin + width * i, e.dtype);
    tensors.set(e.name, tensor(e.shape, data));
    if (e.dtype !== "F32") converted.push({ name: e.name, dtype: e.dtype });
  }
  return { tensors, metadata, converted };
}

/** SHA-256 of the deterministic serialisation: the model hash the audit ledger records. */
export function weightsHash(weights: TensorMap): string {
  return createHash("sha256").update(serializeSafetensors(weights)).digest("hex");
}
