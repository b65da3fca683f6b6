import { createCipheriv, createHash, randomFillSync } from "node:crypto";

/**
 * A source of uniformly random 32-bit words. Production code uses the OS CSPRNG;
 * tests and `--seed` runs use a ChaCha20 keystream keyed by the seed, which is still a
 * cryptographic generator, only a reproducible one.
 */
export interface RandomSource {
  readonly secure: boolean;
  fillUint32(out: Uint32Array): void;
  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number;
}

const POOL_WORDS = 4096;

abstract class PooledRandom implements RandomSource {
  abstract readonly secure: boolean;
  protected pool = new Uint32Array(POOL_WORDS);
  protected pos = POOL_WORDS;

  protected abstract fillBytes(out: Uint8Array): void;

  fillUint32(out: Uint32Array): void {
    this.fillBytes(new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
  }

  uniform(): number {
    if (this.pos + 2 > POOL_WORDS) this.refill();
    const hi = this.pool[this.pos++] >>> 5; // 27 bits
    const lo = this.pool[this.pos++] >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  protected refill(): void {
    this.fillUint32(this.pool);
    this.pos = 0;
  }
}

/** The operating system's CSPRNG (node:crypto). */
export class CryptoRandom extends PooledRandom {
  readonly secure = true;
  protected fillBytes(out: Uint8Array): void {
    // randomFillSync accepts at most 2^31-1 bytes per call.
    for (let off = 0; off < out.length; off += 1 << 30) {
      randomFillSync(out.subarray(off, Math.min(out.length, off + (1 << 30))));
    }
  }
}

/**
 * Where a seeded stream stands: how many keystream bytes it has drawn, where its pool of words for
 * `uniform` was filled from (-1: never) and how far into the pool it is. Numbers only: the stream's
 * key stays with whoever holds the seed.
 */
export interface SeededPosition {
  drawn: number;
  poolAt: number;
  pos: number;
}

/** A seeded stream as an isolated task receives it: its key (hex) and its position. */
export interface SeededState extends SeededPosition {
  key: string;
}

const BLOCK = 64;

/** Deterministic ChaCha20 keystream: key = SHA-256("coreason-enclave/seed" || seed). */
export class SeededRandom extends PooledRandom {
  readonly secure = false;
  private readonly key: Buffer;
  private cipher;
  private zeros = new Uint8Array(0);
  private drawn = 0;
  private poolAt = -1;

  constructor(seed: number | string | { key: Buffer }) {
    super();
    this.key =
      typeof seed === "object"
        ? seed.key
        : createHash("sha256").update("coreason-enclave/seed\0").update(String(seed)).digest();
    this.cipher = this.cipherAt(0);
  }

  /** The keystream from byte `offset` on (ChaCha20's 32-bit block counter leads the IV, little-endian). */
  private cipherAt(offset: number) {
    const iv = Buffer.alloc(16);
    iv.writeUInt32LE(Math.floor(offset / BLOCK), 0);
    const cipher = createCipheriv("chacha20", this.key, iv);
    cipher.update(new Uint8Array(offset % BLOCK));
    return cipher;
  }

  protected fillBytes(out: Uint8Array): void {
    if (this.zeros.length < out.length) this.zeros = new Uint8Array(out.length);
    const ks = this.cipher.update(this.zeros.subarray(0, out.length));
    out.set(ks);
    this.drawn += out.length;
  }

  protected override refill(): void {
    this.poolAt = this.drawn;
    super.refill();
  }

  /** Where this stream stands, and its key: what an isolated task needs to draw exactly what this process would. */
  state(): SeededState {
    return { key: this.key.toString("hex"), ...this.position() };
  }

  position(): SeededPosition {
    return { drawn: this.drawn, poolAt: this.poolAt, pos: this.pos };
  }

  /**
   * Move this stream to `p` (where a copy of it stood after an isolated task drew from it). Refused
   * (RangeError) unless `p` is a position this stream's keystream can be at, at or after its own.
   */
  seek(p: SeededPosition): void {
    const int = (x: unknown): x is number => Number.isSafeInteger(x);
    const poolBytes = POOL_WORDS * 4;
    if (
      !int(p.drawn) ||
      !int(p.poolAt) ||
      !int(p.pos) ||
      p.drawn < this.drawn ||
      p.drawn >= 2 ** 32 * BLOCK ||
      p.pos < 0 ||
      p.pos > POOL_WORDS ||
      (p.poolAt === -1 ? p.pos !== POOL_WORDS : p.poolAt < 0 || p.poolAt + poolBytes > p.drawn)
    )
      throw new RangeError("seeded stream position is invalid");
    if (p.poolAt >= 0) {
      const ks = this.cipherAt(p.poolAt).update(new Uint8Array(poolBytes));
      this.pool = new Uint32Array(ks.buffer.slice(ks.byteOffset, ks.byteOffset + poolBytes));
    }
    this.cipher = this.cipherAt(p.drawn);
    this.drawn = p.drawn;
    this.poolAt = p.poolAt;
    this.pos = p.pos;
  }

  /** A stream that continues from `s` (an isolated task's copy of the host's stream). */
  static fromState(s: SeededState): SeededRandom {
    if (typeof s?.key !== "string" || !/^[0-9a-f]{64}$/.test(s.key))
      throw new RangeError("seeded stream key is invalid");
    const r = new SeededRandom({ key: Buffer.from(s.key, "hex") });
    r.seek(s);
    return r;
  }

  /** An independent stream derived from this seed (for per-client or per-worker streams). */
  static derive(seed: number | string, label: string): SeededRandom {
    return new SeededRandom(`${seed}/${label}`);
  }
}

/**
 * The stream a component named `label` draws from: the OS CSPRNG in production (no seed), or an
 * independent seeded ChaCha20 stream per label for reproducible runs (`--seed`).
 */
export function randomStream(seed: number | string | undefined, label: string): RandomSource {
  return seed === undefined ? new CryptoRandom() : SeededRandom.derive(seed, label);
}

/** Fisher-Yates shuffle of [0, n) with the given source. */
export function permutation(n: number, rng: RandomSource): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.uniform() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}
