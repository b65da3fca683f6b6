import "reflect-metadata";
import { generateKeyPairSync, sign, webcrypto, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import * as x509 from "@peculiar/x509";
import { beforeAll, describe, expect, it } from "vitest";
import { ValidationError } from "../../errors.js";
import { derToPem, parseCertificate, pemToDerList } from "../pki/index.js";
import { judge } from "../../../test/support/attestation.js";
import type { CheckResult } from "../checks.js";
import { EvidenceFormatError } from "../types.js";
import {
  AMD_ROOT_KEYS,
  verifySnpReport,
  verifySnpReportWithoutVek,
  type AmdProduct,
  type VerifySnpOptions,
} from "./index.js";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const VECTORS = new URL("../../../test/vectors/sev-snp/", import.meta.url);
const file = (name: string) => new Uint8Array(readFileSync(new URL(name, VECTORS)));
const text = (name: string) => readFileSync(new URL(name, VECTORS), "utf8");
const EXPECTED = JSON.parse(text("EXPECTED.json"));
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

const MILAN_CHAIN = text("go-sev-guest_ask_ark_milan.pem");
const MILAN_VLEK_CHAIN = text("go-sev-guest_ask_ark_milan_vlek.pem");
const GENOA_CHAIN = text("go-sev-guest_ask_ark_genoa.pem");

/** The three real reports with their certificates and a validation time inside every certificate's window. */
const REAL = {
  goSevGuest: {
    report: file("go-sev-guest_attestation.bin"),
    vek: file("go-sev-guest_vcek.testcer"),
    chain: MILAN_CHAIN,
    at: new Date("2025-01-01T00:00:00Z"),
  },
  trustee: {
    report: file("trustee_test-report.bin"),
    vek: file("trustee_test-vcek.der"),
    chain: MILAN_CHAIN,
    at: new Date("2025-01-01T00:00:00Z"),
  },
  vlek: {
    report: file("trustee_test-vlek-report.bin"),
    vek: file("trustee_test-vlek.der"),
    chain: MILAN_VLEK_CHAIN,
    at: new Date("2025-06-01T00:00:00Z"),
  },
};
type Real = (typeof REAL)[keyof typeof REAL];

const verifyReal = (v: Real, extra: Partial<VerifySnpOptions> = {}, report = v.report) =>
  verifySnpReport(report, { at: v.at, certificates: { vek: v.vek, chain: v.chain }, ...extra });
type Checked = { checks: CheckResult[] };
const status = (r: Checked, name: string) => r.checks.find((c) => c.name === name)?.status;
const failed = (r: Checked) => r.checks.filter((c) => c.status === "fail").map((c) => c.name);

describe("real vectors give the EXPECTED.json verdicts", () => {
  it("pins the ARK fingerprints listed in EXPECTED.json", () => {
    const fp = EXPECTED.trust_anchor_fingerprints_sha256;
    expect(Object.fromEntries(AMD_ROOT_KEYS.map((k) => [k.product, k.sha256]))).toEqual({
      Milan: fp["go-sev-guest_ask_ark_milan.pem"][1].sha256,
      Genoa: fp["go-sev-guest_ask_ark_genoa.pem"][1].sha256,
      Turin: fp["go-sev-guest_ask_ark_turin_vcek.pem"][1].sha256,
    });
  });

  it("go-sev-guest Milan VCEK: signature, chain, TCB and chip id valid; rejected only for DEBUG=1", () => {
    const r = verifyReal(REAL.goSevGuest);
    expect(r.trusted).toBe(true);
    expect(failed(judge(r))).toEqual(["policy.debug"]);
    expect(r.debug).toBe(true);
    for (const name of [
      "certificate-chain",
      "report-signature",
      "signing-key",
      "tcb-binding",
      "chip-id",
      "product",
    ]) {
      expect(status(r, name)).toBe("pass");
    }
    const allowed = verifyReal(REAL.goSevGuest);
    expect(judge(allowed, { allow_debug: true }).trusted).toBe(true);
    expect(allowed.measurement).toBe(EXPECTED.vectors[0].expected.measurement);
    expect(allowed.claims).toMatchObject({
      product: "Milan",
      signingKeyCertificate: "vcek",
      version: 2,
      vmpl: 0,
    });
  });

  it("go-sev-guest report data is the nonce {1,2,3,4,5} followed by zeros", () => {
    const nonce = new Uint8Array(64);
    nonce.set([1, 2, 3, 4, 5]);
    const r = verifyReal(REAL.goSevGuest);
    const ok = judge(r, { allow_debug: true }, { expectedReportData: nonce });
    expect(status(ok, "policy.binding")).toBe("pass");
    expect(hex(r.reportData!)).toBe(EXPECTED.vectors[0].expected.report_data);
    const other = nonce.slice();
    other[63] = 1;
    const bad = judge(r, { allow_debug: true }, { expectedReportData: other });
    expect(bad.trusted).toBe(false);
    expect(failed(bad)).toEqual(["policy.binding"]);
  });

  it("trustee Milan VCEK: trusted (REPORTED_TCB, not CURRENT_TCB, is bound to the VCEK)", () => {
    const r = verifyReal(REAL.trustee);
    expect(failed(r)).toEqual([]);
    expect(r.trusted).toBe(true);
    expect(r.debug).toBe(false);
    expect(r.checks.find((c) => c.name === "tcb-binding")?.detail).toMatch(/ucode 115/);
  });

  it("trustee Milan VLEK (v3, VMPL 1): trusted inside the VLEK's validity, rejected after it expired", () => {
    const r = verifyReal(REAL.vlek);
    expect(failed(r)).toEqual([]);
    expect(status(r, "chip-id")).toBe("skipped");
    expect(r.claims).toMatchObject({ signingKeyCertificate: "vlek", version: 3, vmpl: 1 });
    expect(r.claims.vek?.cspId).toBe("CN=cc-us-east-2.amazonaws.com");
    const expired = verifyReal(REAL.vlek, { at: new Date("2026-01-01T00:00:00Z") });
    expect(expired.trusted).toBe(false);
    expect(failed(expired)).toContain("certificate-chain");
    expect(expired.checks.find((c) => c.name === "certificate-chain")?.detail).toMatch(
      /validity failed at certificate 0/,
    );
    expect(failed(judge(verifyReal(REAL.vlek), { snp: { allowed_vmpls: [0] } }))).toEqual(["policy.vmpl"]);
  });

  it("the source tests' single-byte mutations: byte 42 -> signature, byte 384 -> signature and TCB", () => {
    for (const v of [REAL.trustee, REAL.vlek]) {
      const b42 = v.report.slice();
      b42[42] += 1;
      expect(failed(verifyReal(v, {}, b42))).toEqual(["report-signature"]);
      const b384 = v.report.slice();
      b384[384] += 1; // REPORTED_TCB.BOOT_LOADER
      const r = verifyReal(v, {}, b384);
      expect(failed(r)).toEqual(expect.arrayContaining(["report-signature", "tcb-binding"]));
    }
  });

  it("accepts the certificates as one PEM bundle, as a DER list, or the VEK alone (pinned AMD intermediates)", () => {
    const v = REAL.trustee;
    const bundle = derToPem(v.vek) + v.chain;
    expect(verifySnpReport(v.report, { at: v.at, certificates: bundle }).trusted).toBe(true);
    const ders = [v.vek, ...pemToDerList(v.chain)];
    expect(verifySnpReport(v.report, { at: v.at, certificates: ders }).trusted).toBe(true);
    expect(verifySnpReport(v.report, { at: v.at, certificates: { vek: derToPem(v.vek) } }).trusted).toBe(
      true,
    );
    const vlek = verifySnpReport(REAL.vlek.report, {
      at: REAL.vlek.at,
      certificates: { vek: REAL.vlek.vek },
    });
    expect(vlek.trusted).toBe(true);
  });
});

describe("policy checks (the validator, on the verifier's typed claims)", () => {
  const v = REAL.trustee;
  const e = EXPECTED.vectors[1].expected;
  const under = (policy: Parameters<typeof judge>[1]) => judge(verifyReal(v), policy);
  it("the verifier reads no policy: it runs no allow-list, debug, VMPL or TCB-minimum check", () => {
    const names = verifyReal(v).checks.map((c) => c.name);
    for (const name of [
      "measurement",
      "host-data",
      "min-tcb",
      "report-data",
      "product-allowed",
      "debug",
      "vmpl",
    ]) {
      expect(names).not.toContain(name);
    }
  });

  it("reports allow-lists as skipped when absent and enforces them when given", () => {
    const none = under({});
    for (const name of ["policy.measurement", "policy.min_tcb", "policy.binding", "policy.product"]) {
      expect(status(none, name)).toBe("skipped");
    }
    const other = "ab".repeat(48);
    const refs = (...ms: string[]) => ({
      snp: { reference_values: ms.map((measurement) => ({ measurement })) },
    });
    expect(status(under(refs(other, e.measurement.toUpperCase())), "policy.measurement")).toBe("pass");
    expect(failed(under(refs(other)))).toEqual(["policy.measurement"]);
    const withHost = (host_data: string) => ({
      snp: { reference_values: [{ measurement: e.measurement, host_data }] },
    });
    expect(status(under(withHost(e.host_data)), "policy.measurement")).toBe("pass");
    expect(failed(under(withHost("11".repeat(32))))).toEqual(["policy.measurement"]);
  });

  it("minimum TCB is compared component-wise with REPORTED_TCB", () => {
    const min = (m: Record<string, number>) => under({ snp: { min_tcb: m } });
    expect(status(min({ bootloader: 3, tee: 0, snp: 8, microcode: 115 }), "policy.min_tcb")).toBe("pass");
    const low = min({ microcode: 116 });
    expect(failed(low)).toEqual(["policy.min_tcb"]);
    expect(low.checks.find((c) => c.name === "policy.min_tcb")?.detail).toMatch(/microcode/);
    expect(failed(min({ snp: 9 }))).toEqual(["policy.min_tcb"]);
    // FMC is not part of a Milan TCB, so a minimum for it does not apply.
    expect(status(min({ fmc: 5 }), "policy.min_tcb")).toBe("pass");
  });

  it("product allow-list", () => {
    expect(status(under({ snp: { allowed_products: ["Milan"] } }), "policy.product")).toBe("pass");
    expect(failed(under({ snp: { allowed_products: ["Genoa", "Turin"] } }))).toEqual(["policy.product"]);
  });

  it("rejects malformed options with a ValidationError naming the field", () => {
    expect(() => verifyReal(v, { at: new Date("x") })).toThrow(ValidationError);
    expect(() => verifyReal(v, { at: new Date("x") })).toThrow(/at: must be a valid Date/);
  });
});

describe("tampering is rejected", () => {
  /** Flips every byte of [from, to) in turn; returns how many flips were rejected. */
  function flipAll(v: Real, from: number, to: number, policy: Parameters<typeof judge>[1] = {}): number {
    let rejected = 0;
    for (let i = from; i < to; i++) {
      const bytes = v.report.slice();
      bytes[i] ^= 0x01;
      try {
        if (!judge(verifyReal(v, {}, bytes), policy).trusted) rejected++;
      } catch (e) {
        if (e instanceof EvidenceFormatError) rejected++;
        else throw e;
      }
    }
    return rejected;
  }

  const flipOptions: Record<keyof typeof REAL, Parameters<typeof judge>[1]> = {
    goSevGuest: { allow_debug: true }, // its only failure is DEBUG=1
    trustee: {},
    vlek: {},
  };
  it.each(Object.keys(REAL) as (keyof typeof REAL)[])(
    "%s: a flipped bit in any byte of the signed region 0x000..0x29F is rejected (every byte)",
    (key) => {
      const v = REAL[key];
      const opts = flipOptions[key];
      expect(judge(verifyReal(v), opts).trusted).toBe(true); // the baseline is trusted, so rejections are due to the flip
      expect(flipAll(v, 0, 0x2a0, opts)).toBe(0x2a0);
    },
  );

  it("a flipped bit anywhere in the signature field 0x2A0..0x4A0 is rejected", () => {
    expect(flipAll(REAL.trustee, 0x2a0, 0x4a0)).toBe(0x200);
  });

  it("a flipped bit anywhere in the VCEK's TBSCertificate is rejected", () => {
    const v = REAL.trustee;
    const cert = parseCertificate(v.vek);
    const start = cert.tbs.byteOffset - cert.der.byteOffset;
    let rejected = 0;
    for (let i = start; i < start + cert.tbs.length; i++) {
      const vek = v.vek.slice();
      vek[i] ^= 0x01;
      try {
        const r = verifySnpReport(v.report, { at: v.at, certificates: { vek, chain: v.chain } });
        if (!r.trusted && status(r, "certificate-chain") === "fail") rejected++;
      } catch (e) {
        if (e instanceof EvidenceFormatError) rejected++;
        else throw e;
      }
    }
    expect(rejected).toBe(cert.tbs.length);
  });

  it("rejects a wrong ARK, a swapped ASK, and a VLEK presented with the VCEK chain", () => {
    const v = REAL.trustee;
    const [genoaAsk, genoaArk] = pemToDerList(GENOA_CHAIN);
    const [milanAsk, milanArk] = pemToDerList(MILAN_CHAIN);
    const [milanAsvk] = pemToDerList(MILAN_VLEK_CHAIN);
    const detail = (chain: Uint8Array[], report = v.report, vek = v.vek) => {
      const r = verifySnpReport(report, { at: v.at, certificates: { vek, chain } });
      expect(r.trusted).toBe(false);
      expect(status(r, "certificate-chain")).toBe("fail");
      return r.checks.find((c) => c.name === "certificate-chain")!.detail;
    };
    expect(detail([milanAsk, genoaArk])).toMatch(/name-chaining failed at certificate 1/);
    expect(detail([genoaAsk, genoaArk])).toMatch(/name-chaining failed at certificate 0/);
    expect(detail([milanAsvk, milanArk])).toMatch(/name-chaining failed at certificate 0/);
    expect(detail([genoaAsk])).toMatch(/name-chaining failed at certificate 0/);
    expect(detail([milanAsk], REAL.vlek.report, REAL.vlek.vek)).toMatch(/name-chaining/);
    // Pinning only the Genoa ARK: AMD's genuine Milan chain is then not trusted.
    const genoaOnly = verifySnpReport(v.report, {
      at: v.at,
      certificates: { vek: v.vek, chain: [milanAsk, milanArk] },
      trustedRoots: [{ product: "Genoa", certificate: genoaArk }],
    });
    expect(genoaOnly.checks.find((c) => c.name === "certificate-chain")?.detail).toMatch(/root-pinning/);
  });

  it("rejects a VCEK for another chip, and a report whose SIGNING_KEY names the other key kind", () => {
    const wrongChip = verifySnpReport(REAL.trustee.report, {
      at: REAL.trustee.at,
      certificates: { vek: REAL.goSevGuest.vek, chain: MILAN_CHAIN },
    });
    expect(failed(wrongChip)).toEqual(expect.arrayContaining(["report-signature", "tcb-binding", "chip-id"]));
    const vlekAsVcek = verifySnpReport(REAL.trustee.report, {
      at: REAL.vlek.at,
      certificates: { vek: REAL.vlek.vek, chain: MILAN_VLEK_CHAIN },
    });
    expect(failed(vlekAsVcek)).toEqual(expect.arrayContaining(["signing-key", "report-signature"]));
  });

  it("rejects malformed certificates with EvidenceFormatError naming the certificate", () => {
    const v = REAL.trustee;
    expect(() =>
      verifySnpReport(v.report, { at: v.at, certificates: { vek: v.vek.subarray(0, 100) } }),
    ).toThrow(/certificates.vek/);
    expect(() =>
      verifySnpReport(v.report, { at: v.at, certificates: { vek: v.vek, chain: "no certificate here" } }),
    ).toThrow(/certificates.chain\[0\]: no PEM/);
    expect(() => verifySnpReport(v.report.subarray(1), { at: v.at, certificates: { vek: v.vek } })).toThrow(
      EvidenceFormatError,
    );
  });
});

// Forged AMD PKI: a complete attacker-made ARK -> ASK -> VCEK chain with names copied from AMD's.
// It must be rejected by the pinned roots, and accepted only when the test pins the forged ARK, which
// also lets us exercise Genoa/Turin layouts and the negative binding checks with reports we sign.
describe("forged chains and synthetic reports", () => {
  interface Forged {
    ark: Uint8Array;
    ask: Uint8Array;
    vcekKey: KeyObject;
    makeVcek: (ext: KdsExt) => Promise<Uint8Array>;
  }
  interface KdsExt {
    structVersion: number;
    productName: string;
    bl: number;
    tee: number;
    snp: number;
    ucode: number;
    fmc?: number;
    hwId?: Uint8Array;
  }
  const at = new Date("2026-06-01T00:00:00Z");
  const ecP384 = { name: "ECDSA", namedCurve: "P-384" } as const;
  const sha384 = { name: "ECDSA", hash: "SHA-384" } as const;
  const forged: Partial<Record<AmdProduct, Forged>> = {};

  const derInt = (n: number) => {
    const bytes = n === 0 ? [0] : [];
    for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
    if (bytes[0] & 0x80) bytes.unshift(0);
    return new Uint8Array([0x02, bytes.length, ...bytes]);
  };
  const ia5 = (s: string) => new Uint8Array([0x16, s.length, ...Buffer.from(s, "ascii")]);
  const name = (der: Uint8Array) => new x509.Name(der);

  async function forge(product: AmdProduct): Promise<Forged> {
    const realChain = pemToDerList(
      text(
        product === "Turin"
          ? "go-sev-guest_ask_ark_turin_vcek.pem"
          : `go-sev-guest_ask_ark_${product.toLowerCase()}.pem`,
      ),
    );
    const [realAsk, realArk] = realChain.map((d) => parseCertificate(d));
    const realVcekSubject = parseCertificate(file("trustee_test-vcek.der")).subjectDer;
    const gen = () =>
      webcrypto.subtle.generateKey(ecP384, true, ["sign", "verify"]) as Promise<webcrypto.CryptoKeyPair>;
    const [arkKeys, askKeys] = await Promise.all([gen(), gen()]);
    const validity = {
      notBefore: new Date("2024-01-01T00:00:00Z"),
      notAfter: new Date("2034-01-01T00:00:00Z"),
    };
    const ark = await x509.X509CertificateGenerator.create({
      serialNumber: "01",
      subject: name(realArk.subjectDer),
      issuer: name(realArk.subjectDer),
      ...validity,
      publicKey: arkKeys.publicKey,
      signingKey: arkKeys.privateKey,
      signingAlgorithm: sha384,
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
    });
    const ask = await x509.X509CertificateGenerator.create({
      serialNumber: "02",
      subject: name(realAsk.subjectDer),
      issuer: name(realArk.subjectDer),
      ...validity,
      publicKey: askKeys.publicKey,
      signingKey: arkKeys.privateKey,
      signingAlgorithm: sha384,
      extensions: [new x509.BasicConstraintsExtension(true, 0, true)],
    });
    const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-384" });
    const makeVcek = async (e: KdsExt) => {
      const exts: [string, Uint8Array][] = [
        ["1.3.6.1.4.1.3704.1.1", derInt(e.structVersion)],
        ["1.3.6.1.4.1.3704.1.2", ia5(e.productName)],
        ["1.3.6.1.4.1.3704.1.3.1", derInt(e.bl)],
        ["1.3.6.1.4.1.3704.1.3.2", derInt(e.tee)],
        ["1.3.6.1.4.1.3704.1.3.3", derInt(e.snp)],
        ["1.3.6.1.4.1.3704.1.3.8", derInt(e.ucode)],
      ];
      if (e.fmc !== undefined) exts.push(["1.3.6.1.4.1.3704.1.3.9", derInt(e.fmc)]);
      if (e.hwId) exts.push(["1.3.6.1.4.1.3704.1.4", e.hwId]);
      const vcek = await x509.X509CertificateGenerator.create({
        serialNumber: "03",
        subject: name(realVcekSubject),
        issuer: name(realAsk.subjectDer),
        ...validity,
        publicKey: new Uint8Array(publicKey.export({ format: "der", type: "spki" })),
        signingKey: askKeys.privateKey,
        signingAlgorithm: sha384,
        extensions: exts.map(([oid, value]) => new x509.Extension(oid, false, value)),
      });
      return new Uint8Array(vcek.rawData);
    };
    return {
      ark: new Uint8Array(ark.rawData),
      ask: new Uint8Array(ask.rawData),
      vcekKey: privateKey,
      makeVcek,
    };
  }

  beforeAll(async () => {
    for (const p of ["Milan", "Genoa", "Turin"] as const) forged[p] = await forge(p);
  });

  interface ReportFields {
    version: number;
    policy?: bigint;
    vmpl?: number;
    signingKey?: number;
    cpuid?: [number, number, number];
    chipId: Uint8Array;
    /** TCB bytes in the product's layout. */
    tcb: number[];
    currentTcb?: number[];
    mit?: [bigint, bigint];
  }

  /** Writes an ATTESTATION_REPORT at the offsets of the ABI table and signs it like the AMD-SP. */
  function buildReport(f: ReportFields, key: KeyObject): Uint8Array {
    const b = new Uint8Array(0x4a0);
    const view = new DataView(b.buffer);
    view.setUint32(0x00, f.version, true);
    view.setBigUint64(0x08, f.policy ?? 0x30000n, true);
    view.setUint32(0x30, f.vmpl ?? 0, true);
    view.setUint32(0x34, 1, true);
    b.set(f.currentTcb ?? f.tcb, 0x38);
    view.setUint32(0x48, (f.signingKey ?? 0) << 2, true);
    b.fill(0x5a, 0x50, 0x90); // REPORT_DATA
    b.fill(0xa5, 0x90, 0xc0); // MEASUREMENT
    b.set(f.tcb, 0x180); // REPORTED_TCB
    if (f.cpuid) b.set(f.cpuid, 0x188);
    b.set(f.chipId, 0x1a0);
    b.set(f.tcb, 0x1e0); // COMMITTED_TCB
    b.set([5, 55, 1], 0x1e8);
    b.set([5, 55, 1], 0x1ec);
    b.set(f.tcb, 0x1f0); // LAUNCH_TCB
    if (f.mit) {
      view.setBigUint64(0x1f8, f.mit[0], true);
      view.setBigUint64(0x200, f.mit[1], true);
    }
    const sig = sign("sha384", b.subarray(0, 0x2a0), { key, dsaEncoding: "ieee-p1363" });
    b.set(Uint8Array.from(sig.subarray(0, 48)).reverse(), 0x2a0);
    b.set(Uint8Array.from(sig.subarray(48)).reverse(), 0x2a0 + 72);
    return b;
  }

  const turinChip = () => {
    const c = new Uint8Array(64);
    c.set([1, 2, 3, 4, 5, 6, 7, 8]);
    return c;
  };
  const verifyForged = (p: AmdProduct, report: Uint8Array, vcek: Uint8Array, pin: boolean) =>
    verifySnpReport(report, {
      at,
      certificates: { vek: vcek, chain: [forged[p]!.ask, forged[p]!.ark] },
      ...(pin ? { trustedRoots: [{ product: p, certificate: forged[p]!.ark }] } : {}),
    });

  it("Turin v5: a forged chain is rejected by the pinned roots, accepted only when the forged ARK is pinned", async () => {
    const f = forged.Turin!;
    const chip = turinChip();
    const vcek = await f.makeVcek({
      structVersion: 1,
      productName: "Turin-C0",
      fmc: 1,
      bl: 2,
      tee: 3,
      snp: 4,
      ucode: 0x48,
      hwId: chip.subarray(0, 8),
    });
    const report = buildReport(
      {
        version: 5,
        cpuid: [0x1a, 0x02, 0x01],
        chipId: chip,
        tcb: [1, 2, 3, 4, 0, 0, 0, 0x48],
        mit: [3n, 7n],
      },
      f.vcekKey,
    );
    const rejected = verifyForged("Turin", report, vcek, false);
    expect(rejected.trusted).toBe(false);
    expect(failed(rejected)).toEqual(expect.arrayContaining(["certificate-chain"]));
    expect(rejected.checks.find((c) => c.name === "certificate-chain")?.detail).toMatch(/root-pinning/);
    expect(status(rejected, "report-signature")).toBe("pass"); // the forgery is otherwise self-consistent

    const pinned = verifyForged("Turin", report, vcek, true);
    expect(failed(pinned)).toEqual([]);
    expect(pinned.claims).toMatchObject({
      product: "Turin",
      tcbLayout: "turin",
      reportedTcb: { fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 0x48 },
      launchMitVector: "0x3",
      currentMitVector: "0x7",
    });
    expect(status(pinned, "chip-id")).toBe("pass");
    const verified = verifySnpReport(report, {
      at,
      certificates: { vek: vcek, chain: [f.ask, f.ark] },
      trustedRoots: [{ product: "Turin", certificate: f.ark }],
    });
    expect(failed(judge(verified, { snp: { min_tcb: { fmc: 2 } } }))).toEqual(["policy.min_tcb"]);
  });

  it("Turin: FMC SPL and 8-byte hwID are bound", async () => {
    const f = forged.Turin!;
    const chip = turinChip();
    const tcb = [1, 2, 3, 4, 0, 0, 0, 0x48];
    const report = buildReport({ version: 5, cpuid: [0x1a, 0x02, 0x01], chipId: chip, tcb }, f.vcekKey);
    const base = { structVersion: 1, productName: "Turin-C0", bl: 2, tee: 3, snp: 4, ucode: 0x48 };
    const wrongFmc = await f.makeVcek({ ...base, fmc: 9, hwId: chip.subarray(0, 8) });
    expect(failed(verifyForged("Turin", report, wrongFmc, true))).toEqual(["tcb-binding"]);
    const noFmc = await f.makeVcek({ ...base, hwId: chip.subarray(0, 8) });
    expect(failed(verifyForged("Turin", report, noFmc, true))).toEqual(["tcb-binding"]);
    const otherChip = await f.makeVcek({ ...base, fmc: 1, hwId: new Uint8Array(8).fill(9) });
    expect(failed(verifyForged("Turin", report, otherChip, true))).toEqual(["chip-id"]);
  });

  it("Genoa v3: CPUID must name the ARK's product; VMPL, SIGNING_KEY and TCB order are checked", async () => {
    const f = forged.Genoa!;
    const chip = new Uint8Array(64).fill(0x33);
    const tcb = [9, 0, 0, 0, 0, 0, 20, 0xd1];
    const vcek = await f.makeVcek({
      structVersion: 0,
      productName: "Genoa-B1",
      bl: 9,
      tee: 0,
      snp: 20,
      ucode: 0xd1,
      hwId: chip,
    });
    const good = buildReport({ version: 3, cpuid: [0x19, 0x11, 0x01], chipId: chip, tcb }, f.vcekKey);
    expect(failed(verifyForged("Genoa", good, vcek, true))).toEqual([]);

    const milanCpuid = buildReport({ version: 3, cpuid: [0x19, 0x01, 0x01], chipId: chip, tcb }, f.vcekKey);
    expect(failed(verifyForged("Genoa", milanCpuid, vcek, true))).toEqual(["product"]);

    const hostRequested = buildReport(
      { version: 3, cpuid: [0x19, 0x11, 0x01], chipId: chip, tcb, vmpl: 0xffffffff },
      f.vcekKey,
    );
    expect(failed(judge(verifyForged("Genoa", hostRequested, vcek, true)))).toEqual(["policy.vmpl"]);

    const saysVlek = buildReport(
      { version: 3, cpuid: [0x19, 0x11, 0x01], chipId: chip, tcb, signingKey: 1 },
      f.vcekKey,
    );
    expect(failed(verifyForged("Genoa", saysVlek, vcek, true))).toEqual(["signing-key"]);

    const unsigned = buildReport(
      { version: 3, cpuid: [0x19, 0x11, 0x01], chipId: chip, tcb, signingKey: 7 },
      f.vcekKey,
    );
    expect(failed(verifyForged("Genoa", unsigned, vcek, true))).toEqual(
      expect.arrayContaining(["signing-key", "report-signature"]),
    );

    const reportedAboveCurrent = buildReport(
      { version: 3, cpuid: [0x19, 0x11, 0x01], chipId: chip, tcb, currentTcb: [9, 0, 0, 0, 0, 0, 20, 0xd0] },
      f.vcekKey,
    );
    expect(failed(verifyForged("Genoa", reportedAboveCurrent, vcek, true))).toEqual(["tcb-order"]);

    const masked = buildReport(
      { version: 3, cpuid: [0x19, 0x11, 0x01], chipId: new Uint8Array(64), tcb },
      f.vcekKey,
    );
    expect(failed(verifyForged("Genoa", masked, vcek, true))).toEqual(["chip-id"]);

    const milanName = await f.makeVcek({
      structVersion: 0,
      productName: "Milan-B0",
      bl: 9,
      tee: 0,
      snp: 20,
      ucode: 0xd1,
      hwId: chip,
    });
    expect(failed(verifyForged("Genoa", good, milanName, true))).toEqual(["product"]);
  });

  it("Milan v2: the forged chain fails pinning even with AMD's genuine names on every certificate", async () => {
    const f = forged.Milan!;
    const chip = new Uint8Array(64).fill(0x44);
    const tcb = [3, 0, 0, 0, 0, 0, 8, 0x73];
    const vcek = await f.makeVcek({
      structVersion: 0,
      productName: "Milan-B0",
      bl: 3,
      tee: 0,
      snp: 8,
      ucode: 0x73,
      hwId: chip,
    });
    const report = buildReport({ version: 2, chipId: chip, tcb }, f.vcekKey);
    const r = verifyForged("Milan", report, vcek, false);
    expect(failed(r)).toEqual(expect.arrayContaining(["certificate-chain", "product"]));
    expect(r.trusted).toBe(false);
    // With only the forged VCEK (no chain), the genuine AMD ASK is used, and the forged VCEK does not verify under it.
    const alone = verifySnpReport(report, { at, certificates: { vek: vcek } });
    expect(alone.checks.find((c) => c.name === "certificate-chain")?.detail).toMatch(
      /signature failed at certificate 0/,
    );
  });
});

describe("a report checked without its VCEK/VLEK", () => {
  it("go-sev-guest (DEBUG=1): the debug guest is named, VMPL and TCB order checked, the certificate checks fail for want of a VEK", () => {
    const v = verifySnpReportWithoutVek(file("go-sev-guest_attestation.bin"));
    const r = judge(v);
    expect(r.checks.find((c) => c.name === "policy.debug")).toMatchObject({ status: "fail" });
    expect(r.checks.find((c) => c.name === "policy.debug")!.detail).toMatch(/DEBUG bit \(19\) is set/);
    expect(status(r, "policy.vmpl")).toBe("pass");
    expect(status(r, "tcb-order")).toBe("pass");
    for (const name of ["certificates", "certificate-chain", "report-signature", "tcb-binding", "chip-id"]) {
      expect(status(r, name), name).toBe("fail");
    }
    expect(r.trusted).toBe(false);
  });

  it("trustee (DEBUG=0): report-only checks pass, a minimum TCB and the report data are still judged, never trusted", () => {
    const report = file("trustee_test-report.bin");
    const r = judge(
      verifySnpReportWithoutVek(report),
      { snp: { min_tcb: { bootloader: 4 } } },
      { expectedReportData: report.subarray(0x50, 0x90) },
    );
    expect(status(r, "policy.debug")).toBe("pass");
    expect(status(r, "policy.min_tcb")).toBe("fail");
    expect(status(r, "policy.binding")).toBe("pass");
    expect(r.trusted).toBe(false);
  });
});
