import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { readFileSync } from "node:fs";
import * as x509 from "@peculiar/x509";
import { beforeAll, describe, expect, it } from "vitest";
import { checkCrlIssuedBy, crlRevocationCheck, isRevokedBy, parseCrl } from "./crl.js";
import {
  CertificateFormatError,
  parseCertificate,
  pemToDerList,
  verifyCertificateChain,
  type ParsedCertificate,
} from "./index.js";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const VECTORS = new URL("../../../test/vectors/", import.meta.url);
const file = (name: string) => new Uint8Array(readFileSync(new URL(name, VECTORS)));
const text = (name: string) => readFileSync(new URL(name, VECTORS), "utf8");
const qvlTdx = JSON.parse(text("tdx/dcap-qvl_tdx_quote_collateral.json"));
const qvlSgx = JSON.parse(text("sgx/dcap-qvl_sgx_quote_collateral.json"));
const fromHex = (h: string) => new Uint8Array(Buffer.from(h, "hex"));

describe("parseCrl on Intel CRLs (reference values from openssl crl -text and EXPECTED.json)", () => {
  const [platformCa, root] = pemToDerList(text("tdx/go-tdx-guest_pckcrl_issuer_chain.pem")).map((d) =>
    parseCertificate(d),
  );

  it("go-tdx-guest PCK Platform CA CRL", () => {
    const crl = parseCrl(file("tdx/go-tdx-guest_pckcrl"));
    expect(crl.thisUpdate.toISOString()).toBe("2023-06-08T07:27:52.000Z");
    expect(crl.nextUpdate!.toISOString()).toBe("2023-07-08T07:27:52.000Z");
    expect(crl.crlNumber).toBe(1n);
    expect(crl.revokedSerials.has("6fc34e5023e728923435d61aa4b83c618166ad35")).toBe(true);
    // Serials are kept as their DER INTEGER contents, like ParsedCertificate.serialNumber: a serial whose
    // top bit is set carries a leading 00 octet.
    expect(crl.revokedSerials.has("00efae6e9715fca13b87e333e8261ed6d990a926ad")).toBe(true);
    // EXPECTED: the SPR quote's PCK leaf serial is not listed
    expect(crl.revokedSerials.has("bba6c175d838b8df3900cc3411f24f512d104102")).toBe(false);
    expect(checkCrlIssuedBy(crl, platformCa, new Date("2023-07-01T00:00:00Z"))).toEqual({ ok: true });
  });

  it("dcap-qvl CRLs: entry counts, windows and signatures", () => {
    const pck = parseCrl(fromHex(qvlTdx.pck_crl));
    expect(pck.revokedSerials.size).toBe(44);
    expect(pck.thisUpdate.toISOString()).toBe("2025-06-19T10:00:35.000Z");
    expect(parseCrl(fromHex(qvlSgx.pck_crl)).revokedSerials.size).toBe(0);
    const rootCrl = parseCrl(fromHex(qvlTdx.root_ca_crl));
    expect(rootCrl.revokedSerials.size).toBe(0);
    expect(rootCrl.nextUpdate!.toISOString()).toBe("2026-04-03T11:21:57.000Z");
    const at = new Date("2025-07-01T00:00:00Z");
    expect(checkCrlIssuedBy(rootCrl, root, at)).toEqual({ ok: true });
    expect(checkCrlIssuedBy(pck, platformCa, at)).toEqual({ ok: true });
  });

  it("refuses a CRL outside its window, from another issuer, or with a changed byte", () => {
    const crl = parseCrl(file("tdx/go-tdx-guest_pckcrl"));
    expect(checkCrlIssuedBy(crl, platformCa, new Date("2023-06-01T00:00:00Z"))).toMatchObject({ ok: false });
    expect(checkCrlIssuedBy(crl, platformCa, new Date("2023-07-09T00:00:00Z"))).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/stale/),
    });
    expect(checkCrlIssuedBy(crl, root, new Date("2023-07-01T00:00:00Z"))).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/issuer name/),
    });
    const der = file("tdx/go-tdx-guest_pckcrl");
    let rejected = 0;
    for (let i = 0; i < der.length; i++) {
      const flipped = new Uint8Array(der);
      flipped[i] ^= 0x01;
      try {
        if (!checkCrlIssuedBy(parseCrl(flipped), platformCa, new Date("2023-07-01T00:00:00Z")).ok) rejected++;
      } catch (e) {
        if (e instanceof CertificateFormatError) rejected++;
        else throw e;
      }
    }
    // Every byte is either structure (strict DER) or signed content or the signature itself.
    expect(rejected).toBe(der.length);
  });
});

describe("revocation with generated CRLs", () => {
  type Pair = webcrypto.CryptoKeyPair;
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const at = new Date("2030-06-01T00:00:00Z");
  let caKeys: Pair;
  let ca: ParsedCertificate;
  let leaf: ParsedCertificate;
  let other: ParsedCertificate;

  async function crlDer(entries: string[], opts: { thisUpdate?: Date; nextUpdate?: Date; key?: Pair } = {}) {
    const crl = await x509.X509CrlGenerator.create({
      issuer: "CN=Test CA",
      thisUpdate: opts.thisUpdate ?? new Date("2030-05-01T00:00:00Z"),
      nextUpdate: opts.nextUpdate ?? new Date("2030-07-01T00:00:00Z"),
      entries: entries.map((serialNumber) => ({
        serialNumber,
        revocationDate: new Date("2030-05-01T00:00:00Z"),
      })),
      signingKey: (opts.key ?? caKeys).privateKey,
      signingAlgorithm: alg,
    });
    return new Uint8Array(crl.rawData);
  }

  beforeAll(async () => {
    caKeys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as Pair;
    const leafKeys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as Pair;
    const notBefore = new Date("2030-01-01T00:00:00Z");
    const notAfter = new Date("2031-01-01T00:00:00Z");
    const caCert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: "01",
      name: "CN=Test CA",
      notBefore,
      notAfter,
      keys: caKeys,
      signingAlgorithm: alg,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ],
    });
    const issue = (serialNumber: string) =>
      x509.X509CertificateGenerator.create({
        serialNumber,
        subject: `CN=Leaf ${serialNumber}`,
        issuer: caCert.subject,
        notBefore,
        notAfter,
        publicKey: leafKeys.publicKey,
        signingKey: caKeys.privateKey,
        signingAlgorithm: alg,
      });
    ca = parseCertificate(new Uint8Array(caCert.rawData));
    leaf = parseCertificate(new Uint8Array((await issue("0a1b2c")).rawData));
    other = parseCertificate(new Uint8Array((await issue("0a1b2d")).rawData));
  });

  it("finds a revoked serial and only that one", async () => {
    const crl = parseCrl(await crlDer(["0a1b2c"]));
    expect(checkCrlIssuedBy(crl, ca, at)).toEqual({ ok: true });
    expect(isRevokedBy(crl, leaf)).toBe(true);
    expect(isRevokedBy(crl, other)).toBe(false);
  });

  it("as a chain revocation hook: revoked, missing CRL and foreign-signed CRL all fail closed", async () => {
    const walk = (crls: Uint8Array[], cert = leaf) =>
      verifyCertificateChain({
        chain: [cert.der, ca.der],
        trustedRoots: [ca.fingerprint256],
        at,
        checkRevocation: crlRevocationCheck(crls.map(parseCrl), at),
      });
    expect(walk([await crlDer(["0a1b2d"])]).ok).toBe(true);
    expect(walk([await crlDer(["0a1b2c"])])).toMatchObject({ ok: false, failure: { check: "revocation" } });
    expect(walk([])).toMatchObject({ ok: false, failure: { detail: expect.stringMatching(/no CRL/) } });
    const stranger = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as Pair;
    expect(walk([await crlDer([], { key: stranger })])).toMatchObject({
      ok: false,
      failure: { detail: expect.stringMatching(/signature/) },
    });
    expect(walk([await crlDer([], { nextUpdate: new Date("2030-05-15T00:00:00Z") })])).toMatchObject({
      ok: false,
      failure: { detail: expect.stringMatching(/stale/) },
    });
  });

  it("refuses CRLs with an unsupported critical extension (delta CRL indicator)", async () => {
    const crl = await x509.X509CrlGenerator.create({
      issuer: "CN=Test CA",
      thisUpdate: new Date("2030-05-01T00:00:00Z"),
      nextUpdate: new Date("2030-07-01T00:00:00Z"),
      extensions: [new x509.Extension("2.5.29.27", true, new Uint8Array([0x02, 0x01, 0x01]))],
      signingKey: caKeys.privateKey,
      signingAlgorithm: alg,
    });
    expect(() => parseCrl(new Uint8Array(crl.rawData))).toThrow(/unsupported critical extension/);
  });
});
