import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { Encoder } from "cbor-x";
import { beforeAll, describe, expect, it } from "vitest";
import { pemToDerList } from "../pki/index.js";
import { judge } from "../../../test/support/attestation.js";
import type { CheckResult } from "../checks.js";
import { EvidenceFormatError } from "../types.js";
import {
  AWS_NITRO_ROOT_G1_PEM,
  parseCoseSign1,
  parseNitroDocument,
  sigStructure,
  verifyNitroDocument,
} from "./index.js";

/*
 * Documents built here with our own keys, encoded with cbor-x (an independent CBOR encoder) and
 * signed with WebCrypto: they exercise the checks a real document cannot (root substitution,
 * debug mode, bad digests, malformed fields) with a valid COSE signature.
 */

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
type KeyPair = webcrypto.CryptoKeyPair;
const EC = { name: "ECDSA", namedCurve: "P-384" } as const;
const SIGN = { name: "ECDSA", hash: "SHA-384" } as const;
const cbor = new Encoder({ mapsAsObjects: false, useRecords: false, tagUint8Array: false });
const DAY = 86_400_000;
const NOW = Date.now();
const check = (r: { checks: CheckResult[] }, name: string) => r.checks.find((c) => c.name === name)!;

interface Authority {
  cert: x509.X509Certificate;
  keys: KeyPair;
}

async function authority(
  name: string,
  issuer?: Authority,
  ca = true,
  issuerName?: string,
): Promise<Authority> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ["sign", "verify"])) as KeyPair;
  const extensions = ca
    ? [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ]
    : [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: "0" + Math.floor(Math.random() * 1e9).toString(16),
    subject: name,
    issuer: issuerName ?? issuer?.cert.subject ?? name,
    notBefore: new Date(NOW - DAY),
    notAfter: new Date(NOW + DAY),
    signingAlgorithm: SIGN,
    publicKey: keys.publicKey,
    signingKey: (issuer?.keys ?? keys).privateKey,
    extensions,
  });
  return { cert, keys };
}

const der = (a: Authority) => Buffer.from(a.cert.rawData);
let forgedRoot: Authority;
let forgedInter: Authority;
let leaf: Authority;
const AWS_ROOT_DER = Buffer.from(pemToDerList(AWS_NITRO_ROOT_G1_PEM)[0]);
const REAL = new Uint8Array(
  readFileSync(
    join(import.meta.dirname, "../../../test/vectors/nitro/blocky-nitrite_nitro_attestation.cbor"),
  ),
);

beforeAll(async () => {
  // The attacker's hierarchy copies AWS's root name so only pinning can tell them apart.
  forgedRoot = await authority("C=US, O=Amazon, OU=AWS, CN=aws.nitro-enclaves");
  forgedInter = await authority("C=US, O=Amazon, OU=AWS, CN=forged.us-east-1.aws.nitro-enclaves", forgedRoot);
  leaf = await authority("C=US, O=Amazon, OU=AWS, CN=i-forged.us-east-1.aws", forgedInter, false);
});

type Fields = Map<string, unknown>;

function fields(overrides: Record<string, unknown> = {}): Fields {
  const pcr = (b: number) => Buffer.alloc(48, b);
  const m: Fields = new Map<string, unknown>([
    ["module_id", "i-0123456789abcdef0-enc0123456789abcdef"],
    ["digest", "SHA384"],
    ["timestamp", BigInt(NOW)], // a bigint: cbor-x writes large numbers as floats
    ["pcrs", new Map([0, 1, 2, 3, 4, 8].map((i) => [i, pcr(i + 1)]))],
    ["certificate", der(leaf)],
    ["cabundle", [der(forgedRoot), der(forgedInter)]],
    ["public_key", null],
    ["user_data", null],
    ["nonce", Buffer.alloc(64, 7)],
  ]);
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) m.delete(k);
    else m.set(k, v);
  }
  return m;
}

async function forge(
  payload: Fields | Buffer,
  opts: { protected?: Buffer; unprotected?: unknown; tag?: boolean; key?: KeyPair } = {},
): Promise<Uint8Array> {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(cbor.encode(payload));
  const prot = opts.protected ?? Buffer.from("a1013822", "hex");
  // Sig_structure built independently with cbor-x, then cross-checked against ours.
  const toSign = Buffer.from(cbor.encode(["Signature1", prot, Buffer.alloc(0), body]));
  const sig = Buffer.from(await webcrypto.subtle.sign(SIGN, (opts.key ?? leaf.keys).privateKey, toSign));
  const message = [prot, opts.unprotected ?? new Map(), body, sig];
  const bytes = new Uint8Array(cbor.encode(message));
  if (!opts.tag) return bytes;
  return new Uint8Array([0xd2, ...bytes]);
}

describe("forged Nitro documents", () => {
  it("build a Sig_structure identical to cbor-x's", async () => {
    const bytes = await forge(fields());
    const cose = parseCoseSign1(bytes);
    const independent = cbor.encode([
      "Signature1",
      Buffer.from(cose.protectedBytes),
      Buffer.alloc(0),
      Buffer.from(cose.payload),
    ]);
    expect(Buffer.from(sigStructure(cose)).equals(Buffer.from(independent))).toBe(true);
  });

  it("root substitution: a valid signature under a self-made 'aws.nitro-enclaves' root is rejected", async () => {
    const r = verifyNitroDocument(await forge(fields()), { at: new Date(NOW) });
    expect(check(r, "cose-signature").status).toBe("pass");
    expect(check(r, "certificate-chain")).toMatchObject({ status: "fail" });
    expect(check(r, "certificate-chain").detail).toMatch(/root-pinning.*not pinned/);
    expect(r.trusted).toBe(false);
  });

  it("root substitution: the real AWS root in cabundle[0] does not vouch for a forged intermediate", async () => {
    const r = verifyNitroDocument(await forge(fields({ cabundle: [AWS_ROOT_DER, der(forgedInter)] })), {
      at: new Date(NOW),
    });
    expect(check(r, "cose-signature").status).toBe("pass");
    expect(check(r, "certificate-chain").status).toBe("fail");
    expect(r.trusted).toBe(false);
  });

  it("root substitution: a bundle without any root cannot reach the pinned root", async () => {
    const r = verifyNitroDocument(await forge(fields({ cabundle: [der(forgedInter)] })), {
      at: new Date(NOW),
    });
    expect(check(r, "certificate-chain").detail).toMatch(/root-pinning/);
    expect(r.trusted).toBe(false);
  });

  it("debug mode (all-zero PCR0/1/2) is reported and rejected unless policy allows it", async () => {
    const zero = new Map([0, 1, 2, 3, 4].map((i) => [i, Buffer.alloc(48)]));
    const bytes = await forge(fields({ pcrs: zero }));
    const r = verifyNitroDocument(bytes, { at: new Date(NOW) });
    expect(r.debug).toBe(true);
    expect(check(judge(r, {}, { at: new Date(NOW) }), "policy.debug").status).toBe("fail");
    const allowed = judge(r, { allow_debug: true }, { at: new Date(NOW) });
    expect(check(allowed, "policy.debug").status).toBe("pass");
    const missing = verifyNitroDocument(await forge(fields({ pcrs: new Map([[0, Buffer.alloc(48, 1)]]) })), {
      at: new Date(NOW),
    });
    expect(check(missing, "digest")).toMatchObject({ status: "fail", detail: "PCR1, PCR2 missing" });
  });

  it("a digest other than SHA384, or PCRs of another size, fail the digest check", async () => {
    const sha512 = verifyNitroDocument(await forge(fields({ digest: "SHA512" })), { at: new Date(NOW) });
    expect(check(sha512, "digest").status).toBe("fail");
    const short = verifyNitroDocument(
      await forge(fields({ pcrs: new Map([0, 1, 2].map((i) => [i, Buffer.alloc(32, 9)])) })),
      {
        at: new Date(NOW),
      },
    );
    expect(check(short, "digest").status).toBe("fail");
  });

  it("absent (null) optional fields fail the bindings that expect them", async () => {
    const r = verifyNitroDocument(await forge(fields({ nonce: null })), { at: new Date(NOW) });
    const judged = judge(r, {}, { at: new Date(NOW), expectedReportData: Buffer.alloc(64, 7) });
    expect(check(judged, "policy.binding")).toMatchObject({
      status: "fail",
      detail: "nonce does not equal the expected report data",
    });
    expect(r.reportData).toBeUndefined();
    const withNonce = verifyNitroDocument(await forge(fields()), { at: new Date(NOW) });
    const bound = judge(withNonce, {}, { at: new Date(NOW), expectedReportData: Buffer.alloc(64, 7) });
    expect(check(bound, "policy.binding").status).toBe("pass");
  });

  it("freshness: a future timestamp beyond the skew fails", async () => {
    const r = verifyNitroDocument(await forge(fields({ timestamp: BigInt(NOW + 3_600_000) })), {
      at: new Date(NOW),
    });
    expect(
      check(judge(r, { max_evidence_age_seconds: 60 }, { at: new Date(NOW) }), "policy.age").status,
    ).toBe("fail");
  });

  it("a tagged (18) COSE_Sign1 is accepted like the untagged form", async () => {
    const d = parseNitroDocument(await forge(fields(), { tag: true }));
    expect(d.cose.tagged).toBe(true);
  });

  it.each([
    ["unknown field", { extra: 1 }, /"extra" is not allowed/],
    ["missing mandatory field", { cabundle: undefined }, /cabundle: mandatory field missing/],
    ["null mandatory field", { module_id: null }, /module_id: must not be null/],
    ["empty module_id", { module_id: "" }, /module_id: length/],
    ["zero timestamp", { timestamp: 0 }, /timestamp: must be greater than 0/],
    ["negative timestamp", { timestamp: -5 }, /timestamp: must be an unsigned integer/],
    ["timestamp as a float", { timestamp: NOW + 0.5 }, /only false, true and null/],
    ["PCR index 32", { pcrs: new Map([[32, Buffer.alloc(48)]]) }, /index must be an integer in \[0, 32\)/],
    ["PCR of 47 bytes", { pcrs: new Map([[0, Buffer.alloc(47)]]) }, /pcrs\[0\]: length must be 32, 48 or 64/],
    ["empty pcrs", { pcrs: new Map() }, /pcrs: must hold 1 to 32 entries/],
    ["empty cabundle", { cabundle: [] }, /cabundle: must hold 1 to 16/],
    ["text in cabundle", { cabundle: ["x"] }, /cabundle\[0\]: must be a byte string/],
    ["certificate over 1024 bytes", { certificate: Buffer.alloc(1025, 1) }, /certificate: length/],
    ["user_data over 1024 bytes", { user_data: Buffer.alloc(1025) }, /user_data: length/],
    ["empty public_key", { public_key: Buffer.alloc(0) }, /public_key: length/],
    ["digest as bytes", { digest: Buffer.from("SHA384") }, /digest: must be a text string/],
  ])("rejects %s with EvidenceFormatError", async (_name, overrides, message) => {
    const bytes = await forge(fields(overrides as Record<string, unknown>));
    expect(() => parseNitroDocument(bytes)).toThrow(EvidenceFormatError);
    expect(() => parseNitroDocument(bytes)).toThrow(message);
  });

  it.each([
    ["alg ES256 (-7)", { protected: Buffer.from("a10126", "hex") }, /alg: must be -35/],
    ["an extra protected parameter", { protected: Buffer.from("a20138220300", "hex") }, /exactly the alg/],
    ["an empty protected header", { protected: Buffer.alloc(0) }, /must not be empty/],
    ["an unprotected header that is not a map", { unprotected: [1] }, /unprotected: must be a map/],
  ])("rejects a COSE header with %s", async (_name, opts, message) => {
    const bytes = await forge(fields(), opts as { protected?: Buffer; unprotected?: unknown });
    expect(() => parseNitroDocument(bytes)).toThrow(EvidenceFormatError);
    expect(() => parseNitroDocument(bytes)).toThrow(message);
  });

  it("rejects a payload that is not a map, and a document whose signature is not 96 bytes", async () => {
    expect(() =>
      parseNitroDocument(
        Uint8Array.from(
          cbor.encode([Buffer.from("a1013822", "hex"), new Map(), Buffer.from([0x80]), Buffer.alloc(96)]),
        ),
      ),
    ).toThrow(/payload: must be a map/);
    const real = parseCoseSign1(REAL);
    const short = cbor.encode([
      Buffer.from(real.protectedBytes),
      new Map(),
      Buffer.from(real.payload),
      Buffer.alloc(64),
    ]);
    expect(() => parseNitroDocument(Uint8Array.from(short))).toThrow(/must be 96 bytes/);
  });
});
