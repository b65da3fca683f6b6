/**
 * A strict, minimal CBOR (RFC 8949) decoder for attestation documents.
 *
 * Evidence arrives from an untrusted host, so the decoder accepts only the subset a Nitro
 * document needs and rejects everything else: definite lengths only, shortest-form heads
 * (so every byte of a header matters), no floats, no tags other than the ones a caller
 * allows, no duplicate map keys, bounded nesting and no trailing bytes. Errors carry the
 * byte offset and the rule, never data values.
 */

export type CborItem =
  | { readonly type: "uint"; readonly value: bigint }
  | { readonly type: "nint"; readonly value: bigint }
  | { readonly type: "bytes"; readonly value: Uint8Array }
  | { readonly type: "text"; readonly value: string }
  | { readonly type: "array"; readonly items: readonly CborItem[] }
  | { readonly type: "map"; readonly entries: readonly (readonly [CborItem, CborItem])[] }
  | { readonly type: "tag"; readonly tag: bigint; readonly item: CborItem }
  | { readonly type: "simple"; readonly value: boolean | null };

export class CborError extends Error {
  constructor(
    readonly offset: number,
    rule: string,
  ) {
    super(`CBOR at byte ${offset}: ${rule}`);
    this.name = "CborError";
  }
}

export interface CborDecodeOptions {
  /** Tags that may appear at the top level only (e.g. 18 for a tagged COSE_Sign1). */
  allowedTopLevelTags?: readonly number[];
  /** Maximum nesting depth of arrays/maps/tags. */
  maxDepth?: number;
}

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Decode exactly one CBOR item that spans the whole input. */
export function decodeCbor(bytes: Uint8Array, options: CborDecodeOptions = {}): CborItem {
  const reader = new Reader(bytes, options.maxDepth ?? 8, options.allowedTopLevelTags ?? []);
  const item = reader.item(0);
  if (reader.pos !== bytes.length) throw new CborError(reader.pos, "trailing bytes after the top-level item");
  return item;
}

class Reader {
  pos = 0;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly maxDepth: number,
    private readonly topTags: readonly number[],
  ) {}

  item(depth: number): CborItem {
    if (depth > this.maxDepth) throw new CborError(this.pos, `nesting deeper than ${this.maxDepth}`);
    const start = this.pos;
    const initial = this.byte();
    const major = initial >> 5;
    const info = initial & 0x1f;
    if (major === 7) return this.simple(start, info);
    const arg = this.argument(start, info);
    switch (major) {
      case 0:
        return { type: "uint", value: arg };
      case 1:
        return { type: "nint", value: -1n - arg };
      case 2:
        return { type: "bytes", value: this.take(start, arg) };
      case 3: {
        const raw = this.take(start, arg);
        try {
          return { type: "text", value: fatalUtf8.decode(raw) };
        } catch {
          throw new CborError(start, "text string is not valid UTF-8");
        }
      }
      case 4: {
        const count = this.count(start, arg);
        const items: CborItem[] = [];
        for (let i = 0; i < count; i++) items.push(this.item(depth + 1));
        return { type: "array", items };
      }
      case 5: {
        const count = this.count(start, arg * 2n) / 2;
        const entries: (readonly [CborItem, CborItem])[] = [];
        const seen = new Set<string>();
        for (let i = 0; i < count; i++) {
          const keyStart = this.pos;
          const key = this.item(depth + 1);
          const keyId = keyIdentity(key);
          if (keyId === undefined) throw new CborError(keyStart, "map key must be an integer or text string");
          if (seen.has(keyId)) throw new CborError(keyStart, "duplicate map key");
          seen.add(keyId);
          entries.push([key, this.item(depth + 1)]);
        }
        return { type: "map", entries };
      }
      default: {
        // major 6: tag
        if (depth !== 0 || !this.topTags.some((t) => BigInt(t) === arg)) {
          throw new CborError(start, "tag not allowed here");
        }
        return { type: "tag", tag: arg, item: this.item(depth + 1) };
      }
    }
  }

  private simple(start: number, info: number): CborItem {
    if (info === 20) return { type: "simple", value: false };
    if (info === 21) return { type: "simple", value: true };
    if (info === 22) return { type: "simple", value: null };
    throw new CborError(start, "only false, true and null are accepted among simple/float values");
  }

  /** The head's argument, requiring the shortest encoding and rejecting indefinite lengths. */
  private argument(start: number, info: number): bigint {
    if (info < 24) return BigInt(info);
    if (info === 24) {
      const v = this.byte();
      if (v < 24) throw new CborError(start, "non-minimal head encoding");
      return BigInt(v);
    }
    if (info === 25 || info === 26 || info === 27) {
      const width = info === 25 ? 2 : info === 26 ? 4 : 8;
      const raw = this.take(start, BigInt(width));
      let v = 0n;
      for (const b of raw) v = (v << 8n) | BigInt(b);
      const floor = width === 2 ? 0x100n : width === 4 ? 0x10000n : 0x100000000n;
      if (v < floor) throw new CborError(start, "non-minimal head encoding");
      return v;
    }
    if (info === 31) throw new CborError(start, "indefinite-length items are not accepted");
    throw new CborError(start, "reserved additional-information value");
  }

  /** An element count that cannot exceed the remaining bytes (each item takes at least one). */
  private count(start: number, n: bigint): number {
    if (n > BigInt(this.bytes.length - this.pos)) throw new CborError(start, "element count exceeds input");
    return Number(n);
  }

  private byte(): number {
    if (this.pos >= this.bytes.length) throw new CborError(this.pos, "unexpected end of input");
    return this.bytes[this.pos++];
  }

  private take(start: number, n: bigint): Uint8Array {
    if (n > BigInt(this.bytes.length - this.pos)) throw new CborError(start, "length exceeds input");
    const len = Number(n);
    const out = this.bytes.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
}

function keyIdentity(key: CborItem): string | undefined {
  if (key.type === "uint" || key.type === "nint") return `i:${key.value}`;
  if (key.type === "text") return `t:${key.value}`;
  return undefined;
}

/** Encode a CBOR head (major type + argument) in shortest form. */
export function encodeHead(major: number, arg: number): Uint8Array {
  const m = major << 5;
  if (arg < 24) return Uint8Array.of(m | arg);
  if (arg < 0x100) return Uint8Array.of(m | 24, arg);
  if (arg < 0x10000) return Uint8Array.of(m | 25, arg >> 8, arg & 0xff);
  if (arg <= 0xffffffff) {
    return Uint8Array.of(m | 26, (arg >>> 24) & 0xff, (arg >>> 16) & 0xff, (arg >>> 8) & 0xff, arg & 0xff);
  }
  throw new RangeError("CBOR argument too large for this encoder");
}

/** Encode a byte string. */
export function encodeBytes(value: Uint8Array): Uint8Array {
  return concatBytes([encodeHead(2, value.length), value]);
}

/** Encode a UTF-8 text string. */
export function encodeText(value: string): Uint8Array {
  const raw = new TextEncoder().encode(value);
  return concatBytes([encodeHead(3, raw.length), raw]);
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
