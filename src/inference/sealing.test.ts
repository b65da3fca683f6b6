import { createCipheriv, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { rejection } from "../../test/support/inference.js";
import { InferenceError } from "./errors.js";
import { HpkeKeyPair, SEAL_CONTEXTS, seal, StreamSealer, type SealContext } from "./sealing.js";

const contexts = Object.keys(SEAL_CONTEXTS) as SealContext[];
const msg = new TextEncoder().encode("the secret molecule: CC(=O)OC1=CC=CC=C1C(=O)O");

describe("HPKE sealing", () => {
  it("opens what was sealed to the key for the same context", async () => {
    const key = await HpkeKeyPair.generate();
    expect(key.publicKey).toHaveLength(32);
    for (const c of contexts) {
      const sealed = await seal(key.publicKey, c, msg, "PREDICT");
      expect(sealed.length).toBe(32 + msg.length + 16);
      expect(Buffer.from(await key.open(c, sealed, "PREDICT"))).toEqual(Buffer.from(msg));
    }
  });

  it("refuses to open a payload in any other context, with another key, or under other associated data", async () => {
    const key = await HpkeKeyPair.generate();
    const other = await HpkeKeyPair.generate();
    for (const sealedFor of contexts) {
      const sealed = await seal(key.publicKey, sealedFor, msg);
      for (const openAs of contexts.filter((c) => c !== sealedFor)) {
        const err = await rejection(key.open(openAs, sealed));
        expect(err).toBeInstanceOf(InferenceError);
        expect(err.code).toBe("DECRYPTION_FAILED");
      }
      expect((await rejection(other.open(sealedFor, sealed))).code).toBe("DECRYPTION_FAILED");
    }
    const bound = await seal(key.publicKey, "request", msg, "PREDICT");
    expect((await rejection(key.open("request", bound, "CHAT_STREAM"))).code).toBe("DECRYPTION_FAILED");
  });

  it("turns every flipped bit and every truncation into a typed decryption error", async () => {
    const key = await HpkeKeyPair.generate();
    const sealed = await seal(key.publicKey, "request", msg);
    for (const i of [0, 31, 32, sealed.length - 17, sealed.length - 1]) {
      const bad = Uint8Array.from(sealed);
      bad[i] ^= 0x01;
      expect((await rejection(key.open("request", bad))).code).toBe("DECRYPTION_FAILED");
    }
    for (const n of [0, 10, 47, sealed.length - 1]) {
      expect((await rejection(key.open("request", sealed.subarray(0, n)))).code).toBe("DECRYPTION_FAILED");
    }
  });

  it("opens a stream only chunk by chunk in order, under the stream's context", async () => {
    const key = await HpkeKeyPair.generate();
    const sealer = await StreamSealer.to(key.publicKey, "response");
    const parts = ["a", "bc", "def"].map((s) => new TextEncoder().encode(s));
    const sealed = await Promise.all(parts.map((p, i) => sealer.seal(p, `chunk:${i}`)));
    const inOrder = await key.openStream("response", sealer.enc);
    for (let i = 0; i < parts.length; i++) {
      expect(Buffer.from(await inOrder.open(sealed[i], `chunk:${i}`))).toEqual(Buffer.from(parts[i]));
    }
    const skipping = await key.openStream("response", sealer.enc);
    expect((await rejection(skipping.open(sealed[1], "chunk:1"))).code).toBe("DECRYPTION_FAILED");
    const wrongContext = await key.openStream("assistantStorage", sealer.enc);
    expect((await rejection(wrongContext.open(sealed[0], "chunk:0"))).code).toBe("DECRYPTION_FAILED");
  });

  it("matches RFC 9180's AES-256-GCM: the sealed body is an AES-GCM ciphertext with a 16-byte tag", async () => {
    // Independent check of the AEAD layer's size and the raw primitive it is compared with in the bench.
    const k = randomBytes(32);
    const iv = randomBytes(12);
    const c = createCipheriv("aes-256-gcm", k, iv);
    const raw = Buffer.concat([c.update(msg), c.final(), c.getAuthTag()]);
    const key = await HpkeKeyPair.generate();
    expect((await seal(key.publicKey, "request", msg)).length - 32).toBe(raw.length);
  });

  it("never serialises the private key", async () => {
    const key = await HpkeKeyPair.generate();
    expect(Object.keys(JSON.parse(JSON.stringify(key)))).toEqual(["publicKey"]);
    expect(Object.keys(key)).toEqual(["publicKey"]);
  });
});
