import { createPublicKey, generateKeyPairSync, verify } from "node:crypto";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { measureTree } from "./build-measurement.js";
import { InsecureProvider, SimulatedProvider } from "./providers/software.js";
import {
  parseSoftwareEvidence,
  SIMULATED_EVIDENCE_BYTES,
  verifySoftwareEvidence,
} from "./simulated-evidence.js";
import { EvidenceFormatError } from "./types.js";

const reportData = Uint8Array.from({ length: 64 }, (_, i) => 255 - i);
const measurement = new Uint8Array(48).fill(0x5c);
const fixedNow = () => new Date("2026-01-02T03:04:05.678Z");

describe("simulated evidence format", () => {
  it("lays out the documented fields at the documented offsets, signed by the node key", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const p = new SimulatedProvider({ privateKey, measurement, now: fixedNow });
    const ev = await p.collect(reportData);
    expect(ev.kind).toBe("simulated");
    expect(ev.label).toBe("SIMULATED");
    const b = Buffer.from(ev.bytes);
    expect(b.length).toBe(228);
    expect(b.subarray(0, 8).toString("ascii")).toBe("CRSN-EVD");
    expect(b.readUInt16BE(8)).toBe(1);
    expect(b[10]).toBe(1);
    expect(b[11]).toBe(0);
    expect(Number(b.readBigUInt64BE(12))).toBe(Date.parse("2026-01-02T03:04:05.678Z"));
    expect(b.subarray(20, 68).equals(Buffer.from(measurement))).toBe(true);
    expect(b.subarray(68, 132).equals(Buffer.from(reportData))).toBe(true);
    // Public key at 132..164 is the node's, and the signature at 164 verifies with the SPKI key.
    const spki = publicKey.export({ format: "der", type: "spki" });
    expect(b.subarray(132, 164).equals(spki.subarray(spki.length - 32))).toBe(true);
    expect(verify(null, b.subarray(0, 164), publicKey, b.subarray(164))).toBe(true);
  });

  it("verifies as kind simulated; insecure evidence as kind insecure", async () => {
    const sim = await new SimulatedProvider({ measurement, now: fixedNow }).collect(reportData);
    const r = verifySoftwareEvidence(sim.bytes);
    expect(r.kind).toBe("simulated");
    expect(r.trusted).toBe(true);
    expect(r.measurement).toBe("5c".repeat(48));
    expect(Buffer.from(r.reportData!).equals(Buffer.from(reportData))).toBe(true);
    expect(r.checks.find((c) => c.name === "hardware_root_of_trust")?.status).toBe("skipped");
    const ins = await new InsecureProvider({ measurement, now: fixedNow }).collect(reportData);
    expect(ins.label).toBe("INSECURE");
    expect(ins.bytes[10]).toBe(2);
    expect(verifySoftwareEvidence(ins.bytes).kind).toBe("insecure");
  });

  it("fails the signature when any signed byte changes, including a relabel", async () => {
    const ev = await new SimulatedProvider({ measurement, now: fixedNow }).collect(reportData);
    for (const offset of [10, 19, 20, 67, 68, 131, 140, 163]) {
      const t = Uint8Array.from(ev.bytes);
      t[offset] ^= offset === 10 ? 0x03 : 0x01; // 1 -> 2 turns SIMULATED into INSECURE
      const r = verifySoftwareEvidence(t);
      expect(r.trusted, `offset ${offset}`).toBe(false);
      expect(r.checks.find((c) => c.name === "signature")?.status).toBe("fail");
    }
  });

  it("rejects malformed bytes with a typed error naming the field", () => {
    const good = Buffer.alloc(SIMULATED_EVIDENCE_BYTES);
    Buffer.from("CRSN-EVD").copy(good);
    good.writeUInt16BE(1, 8);
    good[10] = 1;
    const cases: [Uint8Array, RegExp][] = [
      [good.subarray(0, 200), /must be 228 bytes/],
      [Buffer.concat([Buffer.from("XXXX-EVD"), good.subarray(8)]), /magic/],
      [Buffer.from(good).fill(9, 8, 10), /version/],
      [Buffer.from(good).fill(7, 10, 11), /label/],
      [Buffer.from(good).fill(1, 11, 12), /flags/],
      [Buffer.from(good).fill(0xff, 12, 20), /timestamp/],
    ];
    for (const [bytes, msg] of cases) {
      expect(() => parseSoftwareEvidence(new Uint8Array(bytes))).toThrow(EvidenceFormatError);
      expect(() => parseSoftwareEvidence(new Uint8Array(bytes))).toThrow(msg);
    }
    // A valid layout with a garbage key/signature parses, then fails verification (not a crash).
    const r = verifySoftwareEvidence(new Uint8Array(good));
    expect(r.trusted).toBe(false);
  });

  it("refuses small-order node keys, for which a trivial signature verifies for any message", () => {
    // Key = identity point, signature R = identity, S = 0: [S]B = R + [k]A holds for every message,
    // and OpenSSL's Ed25519 accepts it. The evidence must still fail.
    const forged = Buffer.alloc(SIMULATED_EVIDENCE_BYTES);
    Buffer.from("CRSN-EVD").copy(forged);
    forged.writeUInt16BE(1, 8);
    forged[10] = 1;
    forged[132] = 1; // public key 01 00 .. 00
    forged[164] = 1; // R = 01 00 .. 00, S = 0
    const key = createPublicKey({
      key: { kty: "OKP", crv: "Ed25519", x: forged.subarray(132, 164).toString("base64url") },
      format: "jwk",
    });
    expect(verify(null, forged.subarray(0, 164), key, forged.subarray(164))).toBe(true); // the hazard
    const r = verifySoftwareEvidence(new Uint8Array(forged));
    expect(r.trusted).toBe(false);
    expect(r.checks.find((c) => c.name === "signature")?.detail).toMatch(/small-order/);
    for (const sign of [0, 0x80]) {
      const zero = Buffer.from(forged);
      zero.fill(0, 132, 164);
      zero[163] = sign;
      expect(verifySoftwareEvidence(new Uint8Array(zero)).trusted).toBe(false);
    }
  });

  it("ed25519 public key round-trips through the raw form", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const p = new SimulatedProvider({ privateKey, measurement });
    const raw = Buffer.from(p.publicKey);
    const again = createPublicKey({
      key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") },
      format: "jwk",
    });
    expect(again.equals(publicKey)).toBe(true);
  });
});

describe("build measurement", () => {
  it("hashes files in byte order of their paths (digest computed independently with Python hashlib)", async () => {
    const root = mkdtempSync(join(tmpdir(), "measure-"));
    mkdirSync(join(root, "dist", "sub"), { recursive: true });
    writeFileSync(join(root, "dist", "a.js"), "console.log(1)\n");
    writeFileSync(join(root, "dist", "sub", "b.js"), "");
    writeFileSync(join(root, "dist", "B.js"), "xyz");
    const m = await measureTree(root, ["dist"]);
    expect(m.files).toBe(3);
    expect(m.digest).toBe(
      "8308b64ddca1a1009a05cb0354188e30b97639727408462292ddbb4850eb9d54d46f49d8c202fd7abbc3ad8a961462f3",
    );
    writeFileSync(join(root, "dist", "B.js"), "xyZ");
    expect((await measureTree(root, ["dist"])).digest).not.toBe(m.digest);
  });
});
