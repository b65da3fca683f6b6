import type { RandomSource } from "../../random.js";

/**
 * Structure-unaware mutations of evidence bytes, in the spirit of AFL's havoc stage: bit flips,
 * "interesting" integers written over length and count fields, truncation, extension, and splices
 * of chunks from the same or another seed. Deterministic for a seeded RandomSource.
 */
const INTERESTING_8 = [0x00, 0x01, 0x7f, 0x80, 0xff];
const INTERESTING_32 = [
  0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff,
];

export type MutationName =
  "bitflip" | "byte" | "int16" | "int32" | "truncate" | "extend" | "splice" | "delete" | "duplicate";
export const MUTATIONS: readonly MutationName[] = [
  "bitflip",
  "byte",
  "int16",
  "int32",
  "truncate",
  "extend",
  "splice",
  "delete",
  "duplicate",
];

/** Upper bound on a mutant's size, far above any evidence, to keep each iteration bounded. */
export const MAX_MUTANT_BYTES = 256 * 1024;

function int(rng: RandomSource, n: number): number {
  return Math.floor(rng.uniform() * n);
}

function pick<T>(rng: RandomSource, items: readonly T[]): T {
  return items[int(rng, items.length)];
}

function randomBytes(rng: RandomSource, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = int(rng, 256);
  return out;
}

/** Apply one mutation. `donors` are other inputs whose chunks may be spliced in. */
export function mutateOnce(
  input: Uint8Array,
  rng: RandomSource,
  donors: readonly Uint8Array[] = [],
): { bytes: Uint8Array; op: MutationName } {
  const op = pick(rng, MUTATIONS);
  const b = Uint8Array.from(input);
  const n = b.length;
  switch (op) {
    case "bitflip": {
      if (n === 0) return { bytes: randomBytes(rng, 1), op };
      const flips = 1 + int(rng, 8);
      for (let i = 0; i < flips; i++) {
        const at = int(rng, n * 8);
        b[at >> 3] ^= 1 << (at & 7);
      }
      return { bytes: b, op };
    }
    case "byte": {
      if (n === 0) return { bytes: Uint8Array.of(pick(rng, INTERESTING_8)), op };
      b[int(rng, n)] = rng.uniform() < 0.5 ? pick(rng, INTERESTING_8) : int(rng, 256);
      return { bytes: b, op };
    }
    case "int16":
    case "int32": {
      const width = op === "int16" ? 2 : 4;
      if (n < width) return { bytes: b, op };
      const at = int(rng, n - width + 1);
      const value = pick(rng, INTERESTING_32) >>> 0;
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      const le = rng.uniform() < 0.5;
      if (width === 2) dv.setUint16(at, value & 0xffff, le);
      else dv.setUint32(at, value, le);
      return { bytes: b, op };
    }
    case "truncate":
      return { bytes: b.subarray(0, int(rng, n + 1)), op };
    case "extend": {
      const extra = rng.uniform() < 0.5 ? 1 + int(rng, 16) : 1 + int(rng, 4096);
      const out = new Uint8Array(Math.min(MAX_MUTANT_BYTES, n + extra));
      out.set(b.subarray(0, Math.min(n, out.length)));
      out.set(randomBytes(rng, out.length - Math.min(n, out.length)), Math.min(n, out.length));
      return { bytes: out, op };
    }
    case "splice": {
      const donor = donors.length > 0 && rng.uniform() < 0.7 ? pick(rng, donors) : b;
      if (donor.length === 0 || n === 0) return { bytes: b, op };
      const len = 1 + int(rng, Math.min(256, donor.length));
      const from = int(rng, donor.length - len + 1);
      const to = int(rng, n);
      const out = new Uint8Array(Math.min(MAX_MUTANT_BYTES, Math.max(n, to + len)));
      out.set(b.subarray(0, Math.min(n, out.length)));
      out.set(donor.subarray(from, from + Math.min(len, out.length - to)), to);
      return { bytes: out, op };
    }
    case "delete": {
      if (n === 0) return { bytes: b, op };
      const at = int(rng, n);
      const len = 1 + int(rng, Math.min(64, n - at));
      const out = new Uint8Array(n - len);
      out.set(b.subarray(0, at));
      out.set(b.subarray(at + len), at);
      return { bytes: out, op };
    }
    case "duplicate": {
      if (n === 0) return { bytes: b, op };
      const at = int(rng, n);
      const len = 1 + int(rng, Math.min(128, n - at));
      const out = new Uint8Array(Math.min(MAX_MUTANT_BYTES, n + len));
      out.set(b.subarray(0, at + len));
      out.set(b.subarray(at, at + len).subarray(0, out.length - (at + len)), at + len);
      out.set(b.subarray(at + len).subarray(0, Math.max(0, out.length - (at + 2 * len))), at + 2 * len);
      return { bytes: out, op };
    }
  }
}

/** Stack 1..4 mutations (havoc), as single mutations rarely pass the first parser checks together. */
export function mutate(input: Uint8Array, rng: RandomSource, donors: readonly Uint8Array[] = []): Uint8Array {
  let bytes = input;
  const rounds = 1 + int(rng, 4);
  for (let i = 0; i < rounds; i++) bytes = mutateOnce(bytes, rng, donors).bytes;
  return bytes;
}
