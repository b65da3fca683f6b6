import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { bindReportData, expectedFieldFor, reportDataMatches } from "./binding.js";
import { NonceIssuer } from "./nonce.js";
import { AttestationError } from "./types.js";

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AttestationError);
    return (e as AttestationError).code;
  }
  return undefined;
}

describe("NonceIssuer", () => {
  it("issues 32-byte nonces that redeem exactly once", () => {
    let t = 1_000_000;
    const issuer = new NonceIssuer({ now: () => t, ttlMs: 10_000 });
    const a = issuer.issue();
    const b = issuer.issue();
    expect(a.nonce.length).toBe(32);
    expect(Buffer.from(a.nonce).equals(Buffer.from(b.nonce))).toBe(false);
    expect(a.expiresAt.getTime() - a.issuedAt.getTime()).toBe(10_000);
    t += 5_000;
    expect(issuer.redeem(a.nonce).issuedAt.getTime()).toBe(1_000_000);
    expect(codeOf(() => issuer.redeem(a.nonce))).toBe("NONCE_REUSED");
    expect(issuer.pending).toBe(1);
  });

  it("rejects an expired nonce, then forgets it", () => {
    let t = 0;
    const issuer = new NonceIssuer({ now: () => t, ttlMs: 1_000 });
    const a = issuer.issue();
    const b = issuer.issue();
    t = 1_000; // expiry is exclusive
    expect(codeOf(() => issuer.redeem(a.nonce))).toBe("NONCE_EXPIRED");
    t = 5_000;
    issuer.issue(); // sweeps
    expect(codeOf(() => issuer.redeem(b.nonce))).toBe("NONCE_UNKNOWN");
  });

  it("rejects nonces it never issued and wrong sizes", () => {
    const issuer = new NonceIssuer();
    expect(codeOf(() => issuer.redeem(new Uint8Array(32)))).toBe("NONCE_UNKNOWN");
    expect(codeOf(() => issuer.redeem(new Uint8Array(31)))).toBe("NONCE_UNKNOWN");
  });

  it("bounds the number of outstanding nonces", () => {
    const issuer = new NonceIssuer({ maxOutstanding: 2 });
    issuer.issue();
    issuer.issue();
    expect(codeOf(() => issuer.issue())).toBe("NONCE_CAPACITY");
  });

  it("refuses a random source that repeats", () => {
    const issuer = new NonceIssuer({ random: () => new Uint8Array(32).fill(7) });
    issuer.issue();
    expect(codeOf(() => issuer.issue())).toBe("NONCE_CONFIG");
  });
});

describe("bindReportData", () => {
  const nonce = Uint8Array.from({ length: 32 }, (_, i) => i);
  const key = new Uint8Array(32).fill(0xaa);

  it("is SHA-512(domain || nonce || key) (value computed with Python hashlib)", () => {
    expect(Buffer.from(bindReportData(nonce, key)).toString("hex")).toBe(
      "2790b6feb3940441af22939d57dded37ebd762cd00b81c20667b2c70c35aba96" +
        "00189c69dacb4872d36f8d1397792e03e85950596274b4d078aa0b3efe956518",
    );
  });

  it("changes with the nonce and with the key", () => {
    const base = Buffer.from(bindReportData(nonce, key));
    const n2 = Uint8Array.from(nonce);
    n2[0] ^= 1;
    const k2 = Uint8Array.from(key);
    k2[31] ^= 1;
    expect(base.equals(Buffer.from(bindReportData(n2, key)))).toBe(false);
    expect(base.equals(Buffer.from(bindReportData(nonce, k2)))).toBe(false);
    // Independent restatement of the layout: domain tag bytes are not length-prefixed.
    const manual = createHash("sha512")
      .update(Buffer.concat([Buffer.from("coreason-enclave/attest/v1"), nonce, key]))
      .digest();
    expect(base.equals(manual)).toBe(true);
  });

  it("rejects a nonce that is not 32 bytes and an empty key", () => {
    expect(codeOf(() => bindReportData(new Uint8Array(16), key))).toBe("BINDING_INVALID");
    expect(codeOf(() => bindReportData(nonce, new Uint8Array(0)))).toBe("BINDING_INVALID");
  });

  it("compares the kind's field: 64 bytes, or NVIDIA's 32-byte prefix", () => {
    const rd = bindReportData(nonce, key);
    expect(reportDataMatches("snp", rd, rd)).toBe(true);
    expect(reportDataMatches("snp", rd.subarray(0, 32), rd)).toBe(false);
    expect(reportDataMatches("nvidia", rd.subarray(0, 32), rd)).toBe(true);
    expect(expectedFieldFor("nvidia", rd).length).toBe(32);
    const flipped = Uint8Array.from(rd);
    flipped[63] ^= 0x80;
    expect(reportDataMatches("tdx", flipped, rd)).toBe(false);
    expect(reportDataMatches("tdx", undefined, rd)).toBe(false);
  });
});
