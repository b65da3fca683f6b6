import "reflect-metadata";
import { generateKeyPairSync, sign, webcrypto, X509Certificate as NodeX509 } from "node:crypto";
import { readFileSync } from "node:fs";
import * as x509 from "@peculiar/x509";
import { beforeAll, describe, expect, it } from "vitest";
import {
  CertificateFormatError,
  derToPem,
  findExtension,
  normalizeFingerprint,
  parseCertificate,
  pemToDerList,
  readDerExact,
  DerTag,
  sha256Fingerprint,
  verifyCertificateChain,
  verifyEcdsaRaw,
  verifySignature,
  assertCertificateChain,
  type ChainVerification,
} from "./index.js";
import { AttestationError } from "../types.js";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type KeyGenParams = webcrypto.EcKeyGenParams | webcrypto.RsaHashedKeyGenParams;
type SigningAlgorithm = webcrypto.Algorithm | webcrypto.EcdsaParams;

const VECTORS = new URL("../../../test/vectors/sev-snp/", import.meta.url);
const file = (name: string) => new Uint8Array(readFileSync(new URL(name, VECTORS)));
const text = (name: string) => readFileSync(new URL(name, VECTORS), "utf8");
const EXPECTED = JSON.parse(text("EXPECTED.json"));

const [milanAsk, milanArk] = pemToDerList(text("go-sev-guest_ask_ark_milan.pem"));
const [genoaAsk, genoaArk] = pemToDerList(text("go-sev-guest_ask_ark_genoa.pem"));
const [milanAsvk] = pemToDerList(text("go-sev-guest_ask_ark_milan_vlek.pem"));
const vcek = file("go-sev-guest_vcek.testcer");
const MILAN_ARK_FP = EXPECTED.trust_anchor_fingerprints_sha256["go-sev-guest_ask_ark_milan.pem"][1].sha256;
const INSIDE = new Date("2025-01-01T00:00:00Z");

function failureOf(r: ChainVerification) {
  if (r.ok) throw new Error("expected the chain to fail");
  return r.failure;
}

describe("DER reader", () => {
  it("rejects non-minimal lengths, indefinite lengths and trailing bytes", () => {
    expect(() => readDerExact(new Uint8Array([0x04, 0x81, 0x01, 0x00]), DerTag.OCTET_STRING, "t")).toThrow(
      /non-minimal/,
    );
    expect(() => readDerExact(new Uint8Array([0x30, 0x80, 0x00, 0x00]), DerTag.SEQUENCE, "t")).toThrow(
      /indefinite/,
    );
    expect(() => readDerExact(new Uint8Array([0x04, 0x01, 0x00, 0x00]), DerTag.OCTET_STRING, "t")).toThrow(
      /trailing/,
    );
    expect(() => readDerExact(new Uint8Array([0x04, 0x05, 0x00]), DerTag.OCTET_STRING, "t")).toThrow(
      /past the end/,
    );
    expect(readDerExact(new Uint8Array([0x04, 0x01, 0x07]), DerTag.OCTET_STRING, "t").content).toEqual(
      new Uint8Array([7]),
    );
  });

  it("rejects a certificate with one byte appended or removed", () => {
    const extra = new Uint8Array([...vcek, 0]);
    expect(() => parseCertificate(extra)).toThrow(CertificateFormatError);
    expect(() => parseCertificate(vcek.subarray(0, vcek.length - 1))).toThrow(CertificateFormatError);
  });
});

describe("certificate parsing agrees with node:crypto (OpenSSL)", () => {
  const all = [
    vcek,
    file("trustee_test-vcek.der"),
    file("trustee_test-vlek.der"),
    milanAsk,
    milanArk,
    genoaAsk,
    genoaArk,
  ];
  it.each(all.map((der, i) => [i, der] as const))("certificate %i", (_i, der) => {
    const mine = parseCertificate(der);
    const ref = new NodeX509(der);
    expect(mine.fingerprint256).toBe(ref.fingerprint256.replace(/:/g, "").toLowerCase());
    expect(mine.serialNumber.replace(/^0+(?=.)/, "")).toBe(
      ref.serialNumber.toLowerCase().replace(/^0+(?=.)/, ""),
    );
    expect(mine.notBefore.getTime()).toBe(Date.parse(ref.validFrom));
    expect(mine.notAfter.getTime()).toBe(Date.parse(ref.validTo));
    expect(mine.subjectCommonName).toBe(/CN=([^\n]+)/.exec(ref.subject)?.[1]);
    expect(mine.publicKey.equals(ref.publicKey)).toBe(true);
    expect(mine.basicConstraints?.ca ?? false).toBe(ref.ca);
  });

  it("matches the fingerprints recorded in EXPECTED.json", () => {
    for (const [name, entries] of Object.entries(EXPECTED.trust_anchor_fingerprints_sha256)) {
      const ders = pemToDerList(text(name));
      (entries as { sha256: string; cn: string }[]).forEach((e, i) => {
        expect(sha256Fingerprint(ders[i])).toBe(e.sha256);
        expect(parseCertificate(ders[i]).subjectCommonName).toBe(e.cn);
      });
    }
  });

  it("each RSA-PSS link verifies exactly when OpenSSL's X509_verify says so", () => {
    const pairs: [Uint8Array, Uint8Array][] = [
      [vcek, milanAsk],
      [milanAsk, milanArk],
      [milanArk, milanArk],
      [vcek, genoaAsk],
      [milanAsk, genoaArk],
      [file("trustee_test-vcek-invalid-new.der"), milanAsk],
    ];
    for (const [child, issuer] of pairs) {
      const c = parseCertificate(child);
      const mine = verifySignature(
        c.signatureAlgorithm,
        parseCertificate(issuer).publicKey,
        c.tbs,
        c.signature,
      );
      expect(mine).toBe(new NodeX509(child).verify(new NodeX509(issuer).publicKey));
    }
  });

  it("finds extensions by OID", () => {
    const c = parseCertificate(vcek);
    const product = findExtension(c, "1.3.6.1.4.1.3704.1.2");
    expect(Buffer.from(product!.value).toString("latin1")).toContain("Milan-B0");
    expect(findExtension(c, "2.5.29.19")).toBeUndefined();
  });
});

describe("PEM bundles", () => {
  it("decodes a bundle in order, ignoring text between blocks", () => {
    const bundle = `subject=ASK\n${derToPem(milanAsk)}\n# comment\n${derToPem(milanArk)}`;
    const ders = pemToDerList(bundle);
    expect(ders.map(sha256Fingerprint)).toEqual([sha256Fingerprint(milanAsk), sha256Fingerprint(milanArk)]);
  });

  it("rejects corrupted base64, mismatched labels and unterminated blocks", () => {
    const pem = derToPem(milanAsk);
    expect(() => pemToDerList(pem.replace(/\n./, "\n*"))).toThrow(CertificateFormatError);
    expect(() => pemToDerList(pem.replace("END CERTIFICATE", "END X509 CRL"))).toThrow(
      CertificateFormatError,
    );
    expect(() => pemToDerList(pem.slice(0, pem.indexOf("-----END")))).toThrow(CertificateFormatError);
  });
});

describe("verifyCertificateChain with AMD's Milan chain", () => {
  it("accepts VCEK <- ASK <- ARK pinned by fingerprint, or with the ARK supplied as a pinned certificate", () => {
    const byFp = verifyCertificateChain({
      chain: [vcek, milanAsk, milanArk],
      trustedRoots: [MILAN_ARK_FP],
      at: INSIDE,
    });
    expect(byFp.ok && byFp.rootFingerprint).toBe(MILAN_ARK_FP);
    const byCert = verifyCertificateChain({ chain: [vcek, milanAsk], trustedRoots: [milanArk], at: INSIDE });
    expect(byCert.ok && byCert.path.length).toBe(3);
    // Colon-separated upper-case fingerprints are accepted too.
    const colon = MILAN_ARK_FP.toUpperCase().replace(/(..)(?!$)/g, "$1:");
    expect(normalizeFingerprint(colon)).toBe(MILAN_ARK_FP);
    expect(
      verifyCertificateChain({ chain: [vcek, milanAsk, milanArk], trustedRoots: [colon], at: INSIDE }).ok,
    ).toBe(true);
  });

  it("never trusts a root carried in the chain unless it is pinned", () => {
    const f = failureOf(
      verifyCertificateChain({ chain: [vcek, milanAsk, milanArk], trustedRoots: [genoaArk], at: INSIDE }),
    );
    expect(f).toMatchObject({ check: "root-pinning", index: 2 });
  });

  it("names the failing link: swapped ASK, wrong ARK, missing ASK", () => {
    expect(
      failureOf(
        verifyCertificateChain({ chain: [vcek, genoaAsk, genoaArk], trustedRoots: [genoaArk], at: INSIDE }),
      ),
    ).toMatchObject({ check: "name-chaining", index: 0 });
    expect(
      failureOf(
        verifyCertificateChain({ chain: [vcek, milanAsvk, milanArk], trustedRoots: [milanArk], at: INSIDE }),
      ),
    ).toMatchObject({ check: "name-chaining", index: 0 });
    expect(
      failureOf(
        verifyCertificateChain({ chain: [vcek, milanAsk, genoaArk], trustedRoots: [genoaArk], at: INSIDE }),
      ),
    ).toMatchObject({ check: "name-chaining", index: 1 });
    expect(
      failureOf(verifyCertificateChain({ chain: [vcek], trustedRoots: [milanArk], at: INSIDE })),
    ).toMatchObject({
      check: "root-pinning",
      index: 0,
    });
  });

  it("checks validity at the given time for every certificate", () => {
    const before = failureOf(
      verifyCertificateChain({
        chain: [vcek, milanAsk, milanArk],
        trustedRoots: [milanArk],
        at: new Date("2022-09-23"),
      }),
    );
    expect(before).toMatchObject({ check: "validity", index: 0 });
    expect(before.detail).toMatch(/not yet valid/);
    const after = failureOf(
      verifyCertificateChain({
        chain: [vcek, milanAsk, milanArk],
        trustedRoots: [milanArk],
        at: new Date("2030-01-01"),
      }),
    );
    expect(after).toMatchObject({ check: "validity", index: 0 });
    expect(after.detail).toMatch(/expired/);
    const rootExpired = failureOf(
      verifyCertificateChain({
        chain: [milanAsk, milanArk],
        trustedRoots: [milanArk],
        at: new Date("2045-10-22T18:00:00Z"),
      }),
    );
    expect(rootExpired).toMatchObject({ check: "validity", index: 1 });
  });

  it("rejects the synthetic VCEKs that do not chain to AMD", () => {
    for (const name of ["trustee_test-vcek-invalid-legacy.der", "trustee_test-vcek-invalid-new.der"]) {
      const f = failureOf(
        verifyCertificateChain({ chain: [file(name), milanAsk], trustedRoots: [milanArk], at: INSIDE }),
      );
      expect(f).toMatchObject({ check: "signature", index: 0 });
    }
  });

  it("rejects a flipped byte anywhere in the leaf's TBSCertificate", () => {
    const leaf = parseCertificate(vcek);
    const start = leaf.tbs.byteOffset - vcek.byteOffset;
    let rejected = 0;
    for (let i = start; i < start + leaf.tbs.length; i++) {
      const copy = vcek.slice();
      copy[i] ^= 0x01;
      const r = verifyCertificateChain({ chain: [copy, milanAsk], trustedRoots: [milanArk], at: INSIDE });
      if (!r.ok) rejected++;
    }
    expect(rejected).toBe(leaf.tbs.length);
  });

  it("calls the revocation hook for every non-anchor certificate and fails on a revoked one", () => {
    const seen: number[] = [];
    const ok = verifyCertificateChain({
      chain: [vcek, milanAsk, milanArk],
      trustedRoots: [milanArk],
      at: INSIDE,
      checkRevocation: (_c, _i, index) => (seen.push(index), { ok: true }),
    });
    expect(ok.ok).toBe(true);
    expect(seen).toEqual([0, 1]);
    const revoked = verifyCertificateChain({
      chain: [vcek, milanAsk],
      trustedRoots: [milanArk],
      at: INSIDE,
      checkRevocation: (c) =>
        c.subjectCommonName === "SEV-Milan" ? { ok: false, detail: "serial is on the CRL" } : { ok: true },
    });
    expect(failureOf(revoked)).toMatchObject({ check: "revocation", index: 1 });
  });

  it("assertCertificateChain throws AttestationError naming the check", () => {
    expect(() =>
      assertCertificateChain({ chain: [vcek, milanAsk], trustedRoots: [genoaArk], at: INSIDE }),
    ).toThrow(AttestationError);
    try {
      assertCertificateChain({ chain: [vcek, milanAsk], trustedRoots: [genoaArk], at: INSIDE });
    } catch (e) {
      expect((e as AttestationError).check).toBe("certificate-chain.root-pinning");
    }
  });

  it("validates its inputs", () => {
    expect(failureOf(verifyCertificateChain({ chain: [], trustedRoots: [milanArk], at: INSIDE })).check).toBe(
      "input",
    );
    expect(failureOf(verifyCertificateChain({ chain: [vcek], trustedRoots: [], at: INSIDE })).check).toBe(
      "input",
    );
    expect(
      failureOf(verifyCertificateChain({ chain: [vcek], trustedRoots: ["abc"], at: INSIDE })).check,
    ).toBe("input");
    expect(
      failureOf(verifyCertificateChain({ chain: [vcek], trustedRoots: [milanArk], at: new Date("nope") }))
        .check,
    ).toBe("input");
    expect(
      failureOf(
        verifyCertificateChain({
          chain: [new Uint8Array([0x30, 0x00])],
          trustedRoots: [milanArk],
          at: INSIDE,
        }),
      ),
    ).toMatchObject({ check: "parse", index: 0 });
  });
});

// Generated chains exercise the algorithms and constraints AMD's chain does not (ECDSA, PKCS#1 v1.5,
// CA flags, path length, critical extensions).
describe("verifyCertificateChain with generated chains", () => {
  const ec = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
  const rsa = {
    name: "RSASSA-PKCS1-v1_5",
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: "SHA-256",
  };
  let rootKeys: CryptoKeyPair;
  let interKeys: CryptoKeyPair;
  let leafKeys: CryptoKeyPair;
  let rsaKeys: CryptoKeyPair;
  const notBefore = new Date("2024-01-01T00:00:00Z");
  const notAfter = new Date("2034-01-01T00:00:00Z");
  const at = new Date("2025-06-01T00:00:00Z");

  beforeAll(async () => {
    const gen = (alg: KeyGenParams) =>
      webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]) as Promise<CryptoKeyPair>;
    [rootKeys, interKeys, leafKeys, rsaKeys] = await Promise.all([gen(ec), gen(ec), gen(ec), gen(rsa)]);
  });

  async function cert(opts: {
    subject: string;
    issuer: string;
    keys: CryptoKeyPair;
    signer: CryptoKeyPair;
    alg?: SigningAlgorithm;
    ca?: boolean;
    pathLength?: number;
    keyUsage?: x509.KeyUsageFlags;
    extra?: x509.Extension[];
  }): Promise<Uint8Array> {
    const extensions: x509.Extension[] = [...(opts.extra ?? [])];
    if (opts.ca !== undefined)
      extensions.push(new x509.BasicConstraintsExtension(opts.ca, opts.pathLength, true));
    if (opts.keyUsage !== undefined) extensions.push(new x509.KeyUsagesExtension(opts.keyUsage, true));
    const c = await x509.X509CertificateGenerator.create({
      serialNumber: "01",
      subject: opts.subject,
      issuer: opts.issuer,
      notBefore,
      notAfter,
      publicKey: opts.keys.publicKey,
      signingKey: opts.signer.privateKey,
      signingAlgorithm: opts.alg ?? { name: "ECDSA", hash: "SHA-256" },
      extensions,
    });
    return new Uint8Array(c.rawData);
  }
  const sign3 = x509.KeyUsageFlags.keyCertSign;

  it("accepts ECDSA P-256 and RSA PKCS#1 v1.5 links, and @peculiar/x509 objects as input", async () => {
    const root = await cert({
      subject: "CN=Root",
      issuer: "CN=Root",
      keys: rootKeys,
      signer: rootKeys,
      ca: true,
      keyUsage: sign3,
    });
    const inter = await cert({
      subject: "CN=RSA CA",
      issuer: "CN=Root",
      keys: rsaKeys,
      signer: rootKeys,
      ca: true,
      pathLength: 0,
      keyUsage: sign3,
    });
    const leaf = await cert({
      subject: "CN=Leaf",
      issuer: "CN=RSA CA",
      keys: leafKeys,
      signer: rsaKeys,
      alg: { name: "RSASSA-PKCS1-v1_5" },
    });
    const r = verifyCertificateChain({
      chain: [new x509.X509Certificate(leaf), inter, root],
      trustedRoots: [root],
      at,
    });
    expect(r.ok).toBe(true);
    expect(r.ok && r.path[0].signatureAlgorithm).toMatchObject({ kind: "rsa-pkcs1", hash: "sha256" });
    expect(r.ok && r.path[1].signatureAlgorithm).toMatchObject({ kind: "ecdsa", hash: "sha256" });
  });

  it("rejects an intermediate that is not a CA, lacks keyCertSign, or exceeds pathLen", async () => {
    const root = await cert({
      subject: "CN=Root",
      issuer: "CN=Root",
      keys: rootKeys,
      signer: rootKeys,
      ca: true,
    });
    const leafUnder = (issuer: string) =>
      cert({ subject: "CN=Leaf", issuer, keys: leafKeys, signer: interKeys });
    const notCa = await cert({
      subject: "CN=I",
      issuer: "CN=Root",
      keys: interKeys,
      signer: rootKeys,
      ca: false,
    });
    expect(
      failureOf(
        verifyCertificateChain({ chain: [await leafUnder("CN=I"), notCa], trustedRoots: [root], at }),
      ),
    ).toMatchObject({ check: "basic-constraints", index: 1 });
    const noBc = await cert({ subject: "CN=I", issuer: "CN=Root", keys: interKeys, signer: rootKeys });
    expect(
      failureOf(verifyCertificateChain({ chain: [await leafUnder("CN=I"), noBc], trustedRoots: [root], at })),
    ).toMatchObject({ check: "basic-constraints", index: 1 });
    const noSign = await cert({
      subject: "CN=I",
      issuer: "CN=Root",
      keys: interKeys,
      signer: rootKeys,
      ca: true,
      keyUsage: x509.KeyUsageFlags.digitalSignature,
    });
    expect(
      failureOf(
        verifyCertificateChain({ chain: [await leafUnder("CN=I"), noSign], trustedRoots: [root], at }),
      ),
    ).toMatchObject({ check: "key-usage", index: 1 });
    // A root with pathLen 0 may issue only end-entity certificates; here it issued an intermediate.
    const root0 = await cert({
      subject: "CN=Root0",
      issuer: "CN=Root0",
      keys: rootKeys,
      signer: rootKeys,
      ca: true,
      pathLength: 0,
    });
    const i1 = await cert({
      subject: "CN=I",
      issuer: "CN=Root0",
      keys: interKeys,
      signer: rootKeys,
      ca: true,
    });
    expect(
      failureOf(
        verifyCertificateChain({ chain: [await leafUnder("CN=I"), i1, root0], trustedRoots: [root0], at }),
      ),
    ).toMatchObject({ check: "path-length", index: 2 });
  });

  it("rejects an unknown critical extension unless the caller understands it", async () => {
    const root = await cert({
      subject: "CN=Root",
      issuer: "CN=Root",
      keys: rootKeys,
      signer: rootKeys,
      ca: true,
    });
    const leaf = await cert({
      subject: "CN=Leaf",
      issuer: "CN=Root",
      keys: leafKeys,
      signer: rootKeys,
      extra: [new x509.Extension("2.23.133.5.4.1", true, new Uint8Array([0x30, 0x00]))],
    });
    expect(failureOf(verifyCertificateChain({ chain: [leaf], trustedRoots: [root], at }))).toMatchObject({
      check: "critical-extension",
      index: 0,
    });
    expect(
      verifyCertificateChain({
        chain: [leaf],
        trustedRoots: [root],
        at,
        understoodCriticalExtensions: ["2.23.133.5.4.1"],
      }).ok,
    ).toBe(true);
  });

  it("rejects a lookalike root (same name, different key) carried in the chain", async () => {
    const root = await cert({
      subject: "CN=Root",
      issuer: "CN=Root",
      keys: rootKeys,
      signer: rootKeys,
      ca: true,
    });
    const fake = await cert({
      subject: "CN=Root",
      issuer: "CN=Root",
      keys: interKeys,
      signer: interKeys,
      ca: true,
    });
    const leaf = await cert({ subject: "CN=Leaf", issuer: "CN=Root", keys: leafKeys, signer: interKeys });
    expect(
      failureOf(verifyCertificateChain({ chain: [leaf, fake], trustedRoots: [root], at })),
    ).toMatchObject({
      check: "root-pinning",
      index: 1,
    });
    expect(failureOf(verifyCertificateChain({ chain: [leaf], trustedRoots: [root], at }))).toMatchObject({
      check: "root-pinning",
      index: 0,
    });
  });
});

describe("verifyEcdsaRaw (r||s)", () => {
  it("verifies P-256 and P-384 signatures in IEEE P1363 form and rejects any change", () => {
    for (const [curve, hash, size] of [
      ["P-256", "sha256", 32],
      ["P-384", "sha384", 48],
    ] as const) {
      const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: curve });
      const data = new TextEncoder().encode("report body");
      const sig = sign(hash, data, { key: privateKey, dsaEncoding: "ieee-p1363" });
      expect(sig.length).toBe(2 * size);
      expect(verifyEcdsaRaw({ publicKey, hash, data, signature: sig })).toBe(true);
      const jwk = publicKey.export({ format: "jwk" });
      const point = new Uint8Array(
        Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, "base64url"), Buffer.from(jwk.y!, "base64url")]),
      );
      expect(verifyEcdsaRaw({ publicKey: point, curve, hash, data, signature: sig })).toBe(true);
      const spki = new Uint8Array(publicKey.export({ format: "der", type: "spki" }));
      expect(verifyEcdsaRaw({ publicKey: spki, hash, data, signature: sig })).toBe(true);
      const bad = Buffer.from(sig);
      bad[5] ^= 1;
      expect(verifyEcdsaRaw({ publicKey, hash, data, signature: bad })).toBe(false);
      expect(
        verifyEcdsaRaw({ publicKey, hash, data: new TextEncoder().encode("report bodY"), signature: sig }),
      ).toBe(false);
      expect(verifyEcdsaRaw({ publicKey, hash, data, signature: sig.subarray(1) })).toBe(false);
      // A DER-encoded signature is not r||s and must not be accepted here.
      const der = sign(hash, data, { key: privateKey, dsaEncoding: "der" });
      expect(verifyEcdsaRaw({ publicKey, hash, data, signature: der })).toBe(false);
    }
  });
});
