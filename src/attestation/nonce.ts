import { randomBytes } from "node:crypto";
import { AttestationError } from "./types.js";

export const NONCE_BYTES = 32;

export interface IssuedNonce {
  nonce: Uint8Array;
  issuedAt: Date;
  expiresAt: Date;
}

export interface NonceIssuerOptions {
  /** How long a nonce stays redeemable. Default 120 s. */
  ttlMs?: number;
  /** Clock in ms since the epoch (injectable for tests). */
  now?: () => number;
  /** Source of the 32 random bytes (injectable for tests); defaults to the OS CSPRNG. */
  random?: (bytes: number) => Uint8Array;
  /** Upper bound on outstanding nonces, so a flood of requests cannot exhaust memory. Default 100 000. */
  maxOutstanding?: number;
}

interface Entry {
  issuedAt: number;
  expiresAt: number;
}

/**
 * Issues 32-byte single-use challenges for attestation. `redeem` succeeds once per nonce, before
 * it expires; a second redemption, an expired nonce or one this issuer never issued is refused
 * with a typed error (codes NONCE_REUSED, NONCE_EXPIRED, NONCE_UNKNOWN).
 */
export class NonceIssuer {
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly random: (bytes: number) => Uint8Array;
  private readonly maxOutstanding: number;
  private readonly outstanding = new Map<string, Entry>();
  /**
   * Redeemed nonces (value: when to forget them), remembered for two lifetimes so a replay is
   * named as such; after that a replay is still refused, as NONCE_UNKNOWN.
   */
  private readonly redeemed = new Map<string, number>();

  constructor(options: NonceIssuerOptions = {}) {
    this.ttlMs = options.ttlMs ?? 120_000;
    if (!Number.isFinite(this.ttlMs) || this.ttlMs <= 0) {
      throw new AttestationError("nonce", "ttlMs must be a positive number of milliseconds", "NONCE_CONFIG");
    }
    this.now = options.now ?? Date.now;
    this.random = options.random ?? ((n) => new Uint8Array(randomBytes(n)));
    this.maxOutstanding = options.maxOutstanding ?? 100_000;
  }

  get ttl(): number {
    return this.ttlMs;
  }

  issue(): IssuedNonce {
    const t = this.now();
    this.sweep(t);
    if (this.outstanding.size >= this.maxOutstanding) {
      throw new AttestationError(
        "nonce",
        `too many outstanding nonces (limit ${this.maxOutstanding}); retry later`,
        "NONCE_CAPACITY",
      );
    }
    const nonce = this.random(NONCE_BYTES);
    if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_BYTES) {
      throw new AttestationError("nonce", `random source must return ${NONCE_BYTES} bytes`, "NONCE_CONFIG");
    }
    const key = Buffer.from(nonce).toString("hex");
    if (this.outstanding.has(key) || this.redeemed.has(key)) {
      // A repeat from a 256-bit CSPRNG means a broken random source: refuse rather than reuse.
      throw new AttestationError("nonce", "random source repeated a nonce", "NONCE_CONFIG");
    }
    const entry = { issuedAt: t, expiresAt: t + this.ttlMs };
    this.outstanding.set(key, entry);
    return {
      nonce: Uint8Array.from(nonce),
      issuedAt: new Date(entry.issuedAt),
      expiresAt: new Date(entry.expiresAt),
    };
  }

  /**
   * Consume a nonce: returns when it was issued (the earliest moment evidence bound to it can
   * have been produced). Throws unless this is the first redemption of a live nonce.
   */
  redeem(nonce: Uint8Array): { issuedAt: Date } {
    if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_BYTES) {
      throw new AttestationError("nonce", `must be ${NONCE_BYTES} bytes`, "NONCE_UNKNOWN");
    }
    const t = this.now();
    const key = Buffer.from(nonce).toString("hex");
    const entry = this.outstanding.get(key);
    if (!entry) {
      this.sweep(t);
      if (this.redeemed.has(key)) {
        throw new AttestationError("nonce", "already used (replayed evidence)", "NONCE_REUSED");
      }
      throw new AttestationError(
        "nonce",
        "not issued by this verifier, or expired and forgotten",
        "NONCE_UNKNOWN",
      );
    }
    this.outstanding.delete(key);
    if (t >= entry.expiresAt) {
      throw new AttestationError(
        "nonce",
        `expired ${Math.round((t - entry.expiresAt) / 1000)} s ago (lifetime ${this.ttlMs / 1000} s)`,
        "NONCE_EXPIRED",
      );
    }
    this.redeemed.set(key, t + 2 * this.ttlMs);
    return { issuedAt: new Date(entry.issuedAt) };
  }

  /** Number of issued, not yet redeemed or swept nonces. */
  get pending(): number {
    return this.outstanding.size;
  }

  /**
   * Forget what can no longer matter. An expired outstanding nonce is kept for one extra
   * lifetime so a late redemption is reported as expired rather than unknown.
   */
  private sweep(t: number): void {
    // Both maps are in insertion order, which is time order for a monotone clock: stop at the
    // first live entry so a sweep costs only what it removes.
    for (const [k, e] of this.outstanding) {
      if (t < e.expiresAt + this.ttlMs) break;
      this.outstanding.delete(k);
    }
    for (const [k, forgetAt] of this.redeemed) {
      if (t < forgetAt) break;
      this.redeemed.delete(k);
    }
  }
}
