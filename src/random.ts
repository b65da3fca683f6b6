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
  private pool = new Uint32Array(POOL_WORDS);
  private pos = POOL_WORDS;

  protected abstract fillBytes(out: Uint8Array): void;

  fillUint32(out: Uint32Array): void {
    this.fillBytes(new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
  }

  uniform(): number {
    if (this.pos + 2 > POOL_WORDS) {
      this.fillUint32(this.pool);
      this.pos = 0;
    }
    const hi = this.pool[this.pos++] >>> 5; // 27 bits
    const lo = this.pool[this.pos++] >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
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

/** Deterministic ChaCha20 keystream: key = SHA-256("coreason-enclave/seed" || seed). */
export class SeededRandom extends PooledRandom {
  readonly secure = false;
  private readonly cipher;
  private zeros = new Uint8Array(0);

  constructor(seed: number | string) {
    super();
    const key = createHash("sha256").update("coreason-enclave/seed\0").update(String(seed)).digest();
    this.cipher = createCipheriv("chacha20", key, Buffer.alloc(16));
  }

  protected fillBytes(out: Uint8Array): void {
    if (this.zeros.length < out.length) this.zeros = new Uint8Array(out.length);
    const ks = this.cipher.update(this.zeros.subarray(0, out.length));
    out.set(ks);
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
