import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { inflateRawSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../errors.js";
import { parseCertificate, pemToDerList, sha256Fingerprint } from "../pki/index.js";
import { judge } from "../../../test/support/attestation.js";
import type { CheckResult } from "../checks.js";
import { EvidenceFormatError } from "../types.js";
import { CborError, decodeCbor } from "./cbor.js";
import {
  AWS_NITRO_ROOT_G1_PEM,
  AWS_NITRO_ROOT_G1_SHA256,
  MAX_DOCUMENT_BYTES,
  parseCoseSign1,
  parseNitroDocument,
  verifyCoseSign1Es384,
  verifyNitroDocument,
} from "./index.js";

const DIR = join(import.meta.dirname, "../../../test/vectors/nitro");
const read = (name: string) => new Uint8Array(readFileSync(join(DIR, name)));
const EXPECTED = JSON.parse(readFileSync(join(DIR, "EXPECTED.json"), "utf8"));
const PROD = EXPECTED.vectors.find((v: { id: string }) => v.id === "blocky-nitrite-prod");
const SELF = EXPECTED.vectors.find((v: { id: string }) => v.id === "blocky-nitrite-selfsigned");
const doc = read("blocky-nitrite_nitro_attestation.cbor");
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const check = (r: { checks: CheckResult[] }, name: string) => r.checks.find((c) => c.name === name)!;
/** The 1024-byte 0x01 pattern EXPECTED.json reports for public_key, user_data and nonce. */
const ONES = new Uint8Array(1024).fill(1);

describe("the pinned AWS Nitro root", () => {
  it("is the root.pem inside AWS's published zip (sha256 8cf60e2b...faff7c)", () => {
    const zip = read("blocky-nitrite_AWS_NitroEnclaves_Root-G1.zip");
    // The SHA-256 AWS publishes in attestation_process.md section 2.1.
    expect(sha256(zip)).toBe("8cf60e2b2efca96c6a9e71e851d00c1b6991cc09eadbe64a6a1d1b1eb9faff7c");
    const view = Buffer.from(zip);
    expect(view.readUInt32LE(0)).toBe(0x04034b50); // local file header
    expect(view.readUInt16LE(8)).toBe(8); // deflate
    const compressed = view.readUInt32LE(18);
    const start = 30 + view.readUInt16LE(26) + view.readUInt16LE(28);
    const pem = inflateRawSync(view.subarray(start, start + compressed)).toString("latin1");
    const fromZip = pemToDerList(pem)[0];
    expect(hex(pemToDerList(AWS_NITRO_ROOT_G1_PEM)[0])).toBe(hex(fromZip));
    expect(sha256Fingerprint(fromZip)).toBe(AWS_NITRO_ROOT_G1_SHA256);
    expect(AWS_NITRO_ROOT_G1_SHA256).toBe(EXPECTED.root.sha256_fingerprint);
  });
});

describe("parseNitroDocument on the real document", () => {
  const d = parseNitroDocument(doc);
  const p = PROD.parsed;

  it("reads the COSE envelope as EXPECTED", () => {
    expect(doc.length).toBe(PROD.size);
    expect(sha256(doc)).toBe(PROD.sha256);
    expect(d.cose.tagged).toBe(false);
    expect(hex(d.cose.protectedBytes)).toBe(p.protected_hex);
    expect(d.cose.signature.length).toBe(p.sig_len);
  });

  it("reads every payload field as EXPECTED", () => {
    expect(d.moduleId).toBe(p.module_id);
    expect(d.digest).toBe(p.digest);
    expect(d.timestamp).toBe(p.timestamp_ms);
    expect(new Date(d.timestamp).toISOString()).toBe(PROD.validation_time);
    const pcrs = Object.fromEntries([...d.pcrs].map(([i, v]) => [String(i), hex(v)]));
    expect(pcrs).toEqual(p.pcrs);
    for (const field of ["publicKey", "userData", "nonce"] as const) {
      expect(hex(d[field]!)).toBe(hex(ONES));
    }
    expect(sha256(d.userData!)).toBe(p.user_data.sha256);
    expect(d.cabundle.map(sha256)).toEqual(p.cabundle.map((c: { sha256: string }) => c.sha256));
    expect(parseCertificate(d.certificate).subjectCommonName).toBe(
      /CN=([^,]+)/.exec(p.certificate.subject)![1],
    );
  });
});

describe("verifyNitroDocument on the real document", () => {
  it("is trusted at the document's timestamp, with every check passing or explicitly skipped", () => {
    const r = verifyNitroDocument(doc, { at: "document" });
    expect(r.kind).toBe("nitro");
    expect(r.trusted).toBe(true);
    for (const name of ["leaf-certificate", "cose-signature", "certificate-chain", "digest"]) {
      expect(check(r, name).status, name).toBe("pass");
    }
    // The verifier authenticates only; the policy's checks are the validator's.
    expect(r.checks.map((c) => c.name)).toEqual([
      "leaf-certificate",
      "cose-signature",
      "certificate-chain",
      "digest",
    ]);
    const judged = judge(r, {}, { at: new Date(PROD.parsed.timestamp_ms) });
    expect(check(judged, "policy.debug").status).toBe("pass");
    for (const name of ["policy.measurement", "policy.binding"]) {
      expect(check(judged, name).status, name).toBe("skipped");
    }
    expect(r.measurement).toBe(PROD.parsed.pcrs["0"]);
    expect(r.debug).toBe(PROD.debug_mode);
    expect(hex(r.reportData!)).toBe(hex(ONES));
    expect(JSON.parse(JSON.stringify(r.claims))).toEqual(r.claims);
    expect(r.claims.rootFingerprint).toBe(EXPECTED.root.sha256_fingerprint);
    expect(r.claims.timestamp).toBe(PROD.validation_time);
  });

  it("fails the chain when the leaf has expired (now), is not yet valid (1970) or far in the future", () => {
    for (const at of [undefined, new Date("1970-01-02T00:00:00Z"), new Date("9999-01-01T00:00:00Z")]) {
      const r = verifyNitroDocument(doc, at ? { at } : {});
      expect(r.trusted).toBe(false);
      expect(check(r, "certificate-chain").status).toBe("fail");
      expect(check(r, "certificate-chain").detail).toMatch(/validity/);
      expect(check(r, "cose-signature").status).toBe("pass");
    }
  });

  it("the validator checks the nonce binding, PCR reference values and the document's age", () => {
    const r = verifyNitroDocument(doc, { at: "document" });
    const t = PROD.parsed.timestamp_ms;
    const at = new Date(t + 60_000);
    // The binding is the 64-byte nonce field; this document's nonce is 1024 bytes, so it binds nothing of ours.
    expect(
      check(judge(r, {}, { at, expectedReportData: ONES.subarray(0, 64) }), "policy.binding").status,
    ).toBe("fail");
    const pcrs = PROD.parsed.pcrs;
    const refs = (...entries: { pcr0: string; [k: string]: string }[]) => ({
      nitro: { reference_values: entries },
    });
    const ok = judge(
      r,
      refs(
        { pcr0: "00".repeat(48) },
        { pcr0: pcrs["0"].toUpperCase(), pcr1: pcrs["1"], pcr2: pcrs["2"], pcr8: pcrs["8"] },
      ),
      { at },
    );
    expect(check(ok, "policy.measurement").status).toBe("pass");
    expect(ok.trusted).toBe(true);
    const bad = judge(r, refs({ pcr0: pcrs["1"], pcr2: pcrs["2"] }), { at });
    expect(check(bad, "policy.measurement")).toMatchObject({ status: "fail" });
    expect(bad.trusted).toBe(false);
    // Age from the NSM's signed timestamp (max_evidence_age_seconds).
    expect(check(judge(r, { max_evidence_age_seconds: 120 }, { at }), "policy.age").status).toBe("pass");
    const stale = judge(r, { max_evidence_age_seconds: 120 }, { at: new Date(t + 3_600_000) });
    expect(check(stale, "policy.age").status).toBe("fail");
    expect(stale.trusted).toBe(false);
  });

  it("rejects invalid options with a ValidationError naming the field", () => {
    expect(() => verifyNitroDocument(doc, { at: new Date(NaN) })).toThrow(ValidationError);
    expect(() => verifyNitroDocument(doc, { at: new Date(NaN) })).toThrow(/at/);
  });
});

describe("the real document with parameters in its unsigned unprotected header", () => {
  // 84 44 a1013822 [a0 -> a1 04 43 "kid"]: AWS's COSE library and nitrite ignore this header.
  const withKid = new Uint8Array([
    ...doc.subarray(0, 6),
    0xa1,
    0x04,
    0x43,
    0x6b,
    0x69,
    0x64,
    ...doc.subarray(7),
  ]);

  it("still verifies, with a warning that the parameters were ignored", () => {
    expect(doc[6]).toBe(0xa0);
    const r = verifyNitroDocument(withKid, { at: "document" });
    expect(r.trusted, JSON.stringify(r.checks)).toBe(true);
    expect(check(r, "cose-signature").status).toBe("pass");
    expect(check(r, "unprotected-header")).toMatchObject({ status: "warn" });
    expect(check(r, "unprotected-header").detail).toMatch(/1 parameter/);
    expect(
      verifyNitroDocument(doc, { at: "document" }).checks.some((c) => c.name === "unprotected-header"),
    ).toBe(false);
  });

  it("leaves the signed parts strict: a flipped payload byte still fails", () => {
    const t = Uint8Array.from(withKid);
    t[t.length - 200] ^= 1;
    let trusted = false;
    try {
      trusted = verifyNitroDocument(t, { at: "document" }).trusted;
    } catch (err) {
      if (!(err instanceof EvidenceFormatError)) throw err;
    }
    expect(trusted).toBe(false);
  });
});

describe("the self-signed test document", () => {
  const self = read("blocky-nitrite_selfsigned_attestation.cbor");

  it("is rejected as malformed: its COSE unprotected header is null, not a map", () => {
    expect(sha256(self)).toBe(SELF.sha256);
    expect(() => verifyNitroDocument(self, { at: "document" })).toThrow(EvidenceFormatError);
    expect(() => verifyNitroDocument(self)).toThrow(/unprotected: must be a map/);
  });

  it("has a valid COSE signature, so signature-only checking would accept it; the AWS rules reject it", () => {
    // Replace the (unsigned) null unprotected header by an empty map: 84 44 a1013822 [f6 -> a0].
    expect(self[6]).toBe(0xf6);
    const repaired = Uint8Array.from(self);
    repaired[6] = 0xa0;
    const cose = parseCoseSign1(repaired);
    const selfCert = parseCertificate(read("blocky-nitrite_selfsigned_cert.der"));
    expect(selfCert.subject).toBe(SELF.parsed.certificate.subject);
    expect(verifyCoseSign1Es384(cose, selfCert.publicKey)).toBe(
      SELF.parsed.cose_sig_valid_with_embedded_cert,
    );
    // ...but the document has no CA bundle to reach AWS: cabundle is mandatory and never null.
    expect(() => parseNitroDocument(repaired)).toThrow(/cabundle: must not be null/);
    expect(() => verifyNitroDocument(repaired, { at: "document" })).toThrow(EvidenceFormatError);
  });
});

describe("tampering and malformed input", () => {
  const cose = parseCoseSign1(doc);
  const payloadStart = doc.length - cose.signature.length - 2 - cose.payload.length;
  const sigStart = doc.length - cose.signature.length;

  it("rejects systematic byte flips over protected header, payload (incl. certificates) and signature", () => {
    expect(hex(doc.subarray(payloadStart, payloadStart + 8))).toBe(hex(cose.payload.subarray(0, 8)));
    const positions = new Set<number>();
    for (let i = 0; i < payloadStart; i++) positions.add(i); // COSE heads and protected header
    for (let i = payloadStart; i < sigStart; i += 11) positions.add(i); // payload, every 11th byte
    for (let i = sigStart - 2; i < doc.length; i++) positions.add(i); // signature head and r||s
    // Each certificate gets extra coverage: its first 16 bytes and its signature tail.
    const d = parseNitroDocument(doc);
    for (const cert of [d.certificate, ...d.cabundle]) {
      const at = Buffer.from(doc).indexOf(Buffer.from(cert));
      for (let i = 0; i < 16; i++) positions.add(at + i);
      for (let i = cert.length - 16; i < cert.length; i++) positions.add(at + i);
    }
    let rejected = 0;
    for (const pos of positions) {
      const t = Uint8Array.from(doc);
      t[pos] ^= 1 << (pos % 8); // every bit position is exercised across the sweep
      try {
        if (!verifyNitroDocument(t, { at: "document" }).trusted) rejected++;
      } catch (e) {
        if (!(e instanceof EvidenceFormatError)) throw e;
        rejected++;
      }
    }
    expect(positions.size).toBeGreaterThan(800);
    expect(rejected).toBe(positions.size);
  });

  it("rejects every truncation with EvidenceFormatError", () => {
    for (let n = 0; n < doc.length; n++) {
      expect(() => parseNitroDocument(doc.subarray(0, n))).toThrow(EvidenceFormatError);
    }
  });

  it("accepts the document's base64 text (string or bytes, line-wrapped) and rejects other text", () => {
    const b64 = Buffer.from(doc).toString("base64");
    const wrapped = b64.match(/.{1,76}/g)!.join("\n") + "\n";
    expect(verifyNitroDocument(wrapped, { at: "document" }).trusted).toBe(true);
    expect(parseNitroDocument(new Uint8Array(Buffer.from(wrapped))).moduleId).toBe(PROD.parsed.module_id);
    expect(() => parseNitroDocument(b64.slice(1))).toThrow(/base64/);
    expect(() => parseNitroDocument("not base64!")).toThrow(EvidenceFormatError);
  });

  it("rejects trailing bytes and oversized input", () => {
    const longer = new Uint8Array(doc.length + 1);
    longer.set(doc);
    expect(() => parseNitroDocument(longer)).toThrow(/trailing bytes/);
    expect(() => parseNitroDocument(new Uint8Array(MAX_DOCUMENT_BYTES + 1))).toThrow(/exceeds/);
    expect(() => verifyNitroDocument(new Uint8Array(MAX_DOCUMENT_BYTES + 1))).toThrow(EvidenceFormatError);
  });
});

describe("strict CBOR", () => {
  const hexItem = (h: string) => decodeCbor(new Uint8Array(Buffer.from(h, "hex")));
  it("decodes RFC 8949 Appendix A examples", () => {
    expect(hexItem("00")).toEqual({ type: "uint", value: 0n });
    expect(hexItem("1903e8")).toEqual({ type: "uint", value: 1000n });
    expect(hexItem("1b000000e8d4a51000")).toEqual({ type: "uint", value: 1000000000000n });
    expect(hexItem("3903e7")).toEqual({ type: "nint", value: -1000n });
    expect(hexItem("62c3bc")).toEqual({ type: "text", value: "\u00fc" });
    expect(hexItem("4401020304")).toMatchObject({ type: "bytes", value: Uint8Array.of(1, 2, 3, 4) });
    expect(hexItem("8301820203820405")).toMatchObject({ type: "array", items: [{ value: 1n }, {}, {}] });
    expect(hexItem("a26161016162820203")).toMatchObject({
      type: "map",
      entries: [
        [{ value: "a" }, { value: 1n }],
        [{}, {}],
      ],
    });
    expect(hexItem("f6")).toEqual({ type: "simple", value: null });
  });
  it.each([
    ["5f42010243030405ff", "indefinite"],
    ["1817", "non-minimal"],
    ["190017", "non-minimal"],
    ["f93c00", "float"],
    ["f7", "undefined"],
    ["a201020103", "duplicate key"],
    ["0000", "trailing"],
    ["4401", "truncated"],
    ["c11a514b67b0", "tag"],
    ["9bffffffffffffffff", "huge count"],
    ["62c328", "invalid UTF-8"],
    ["818181818181818181818100", "too deep"],
  ])("rejects %s (%s)", (h) => {
    expect(() => hexItem(h)).toThrow(CborError);
  });
});
