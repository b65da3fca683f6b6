import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseCertificate } from "../pki/index.js";
import { EvidenceFormatError } from "../types.js";
import { decodeTcb, parseSnpReport, parseVekExtensions, productFromCpuid, type SnpTcb } from "./index.js";

const VECTORS = new URL("../../../test/vectors/sev-snp/", import.meta.url);
const file = (name: string) => new Uint8Array(readFileSync(new URL(name, VECTORS)));
const EXPECTED = JSON.parse(readFileSync(new URL("EXPECTED.json", VECTORS), "utf8"));
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

interface ExpectedTcb {
  raw: string;
  bl: number;
  tee: number;
  snp: number;
  ucode: number;
}
const tcbView = (t: SnpTcb): ExpectedTcb => ({
  raw: t.raw,
  bl: t.bootloader,
  tee: t.tee,
  snp: t.snp,
  ucode: t.microcode,
});

describe("parseSnpReport against EXPECTED.json", () => {
  interface Vector {
    id: string;
    file: string;
    size: number;
    sha256: string;
    expected: Record<string, unknown>;
  }
  const vectors: [string, Vector][] = (EXPECTED.vectors as Vector[]).map((v) => [v.id, v]);
  it.each(vectors)("%s: every parsed field", (_id, v) => {
    const bytes = file(v.file);
    expect(bytes.length).toBe(v.size);
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(v.sha256);
    const r = parseSnpReport(bytes);
    const e = v.expected as Record<string, never>;
    expect(r.version).toBe(e.version);
    expect(r.guestSvn).toBe(e.guest_svn);
    expect(r.policy.raw).toBe(e.policy);
    const bits = e.policy_bits as Record<string, number | boolean>;
    expect({
      abi_minor: r.policy.abiMinor,
      abi_major: r.policy.abiMajor,
      smt: r.policy.smt,
      reserved17: true, // parseSnpReport rejects a policy without bit 17
      migrate_ma: r.policy.migrateMa,
      debug: r.policy.debug,
      single_socket: r.policy.singleSocket,
    }).toEqual(bits);
    expect(hex(r.familyId)).toBe(e.family_id);
    expect(hex(r.imageId)).toBe(e.image_id);
    expect(r.vmpl).toBe(e.vmpl);
    expect(r.signatureAlgo).toBe(e.signature_algo);
    expect(tcbView(r.currentTcb)).toEqual(e.current_tcb);
    expect(r.platformInfo.raw).toBe(e.platform_info);
    expect(r.signerInfo.raw).toBe(e.signer_info);
    expect(hex(r.reportData)).toBe(e.report_data);
    expect(hex(r.measurement)).toBe(e.measurement);
    expect(hex(r.hostData)).toBe(e.host_data);
    expect(hex(r.idKeyDigest)).toBe(e.id_key_digest);
    expect(hex(r.authorKeyDigest)).toBe(e.author_key_digest);
    expect(hex(r.reportId)).toBe(e.report_id);
    expect(hex(r.reportIdMa)).toBe(e.report_id_ma);
    expect(tcbView(r.reportedTcb)).toEqual(e.reported_tcb);
    const fms = r.cpuid ? [r.cpuid.family, r.cpuid.model, r.cpuid.stepping] : [0, 0, 0];
    expect(fms).toEqual(e.cpuid_fms);
    expect(hex(r.chipId)).toBe(e.chip_id);
    expect(tcbView(r.committedTcb)).toEqual(e.committed_tcb);
    const v3 = (t: { build: number; minor: number; major: number }) => [t.build, t.minor, t.major];
    expect(v3(r.currentVersion)).toEqual(e.current_build_minor_major);
    expect(v3(r.committedVersion)).toEqual(e.committed_build_minor_major);
    expect(tcbView(r.launchTcb)).toEqual(e.launch_tcb);
    expect(r.launchMitVector ?? "0x0").toBe(e.launch_mit);
    expect(r.currentMitVector ?? "0x0").toBe(e.current_mit);
    // Signature fields: r and s are the 72-byte little-endian fields reversed into 48 big-endian bytes.
    expect(hex(r.signature.r)).toBe(hex(bytes.slice(0x2a0, 0x2a0 + 48).reverse()));
    expect(hex(r.signature.s)).toBe(hex(bytes.slice(0x2e8, 0x2e8 + 48).reverse()));
    expect(r.signedBytes).toEqual(bytes.subarray(0, 0x2a0));
  });

  it("reads the signing key, MASK_CHIP_KEY and AUTHOR_KEY_EN from SIGNER_INFO", () => {
    expect(parseSnpReport(file("trustee_test-report.bin")).signerInfo.signingKey).toBe("vcek");
    const vlek = parseSnpReport(file("trustee_test-vlek-report.bin"));
    expect(vlek.signerInfo).toMatchObject({ signingKey: "vlek", maskChipKey: false, authorKeyEn: false });
    expect(vlek.platformInfo).toMatchObject({
      smtEnabled: true,
      tsmeEnabled: true,
      eccEnabled: true,
      aliasCheckComplete: true,
    });
    expect(vlek.product).toBe("Milan"); // CPUID family 19h model 01h
  });

  it("copies its input: changing the caller's buffer afterwards changes nothing", () => {
    const bytes = file("trustee_test-report.bin");
    const r = parseSnpReport(bytes);
    bytes[0x90] ^= 0xff;
    expect(hex(r.measurement)).toBe(EXPECTED.vectors[1].expected.measurement);
  });
});

describe("parseSnpReport fails closed", () => {
  const base = () => file("trustee_test-report.bin");
  const v3 = () => file("trustee_test-vlek-report.bin");
  const expectFormatError = (bytes: Uint8Array, field: RegExp) => {
    let error: unknown;
    try {
      parseSnpReport(bytes);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EvidenceFormatError);
    expect((error as EvidenceFormatError).code).toBe("EVIDENCE_MALFORMED");
    expect((error as Error).message).toMatch(field);
  };
  const with_ = (bytes: Uint8Array, offset: number, value: number) => {
    bytes[offset] = value;
    return bytes;
  };

  it("rejects truncated and oversized input", () => {
    const b = base();
    for (const n of [0, 1, 0x2a0, 1183]) expectFormatError(b.subarray(0, n), /exactly 1184 bytes/);
    expectFormatError(new Uint8Array([...b, 0]), /exactly 1184 bytes/);
    expectFormatError(new Uint8Array(2 * 1184), /exactly 1184 bytes/);
  });

  it("rejects unsupported versions", () => {
    for (const v of [0, 1, 4, 6, 0xff]) expectFormatError(with_(base(), 0, v), /VERSION/);
  });

  it("rejects each reserved range when non-zero, naming it", () => {
    expectFormatError(with_(base(), 0x4c, 1), /RESERVED after SIGNER_INFO/);
    expectFormatError(with_(base(), 0x188, 1), /RESERVED after REPORTED_TCB/); // v2: CPUID bytes are reserved
    expectFormatError(with_(base(), 0x19f, 1), /RESERVED after REPORTED_TCB/);
    expectFormatError(with_(v3(), 0x18b, 1), /RESERVED after CPUID_STEP/);
    expectFormatError(with_(base(), 0x1eb, 1), /RESERVED after CURRENT_MAJOR/);
    expectFormatError(with_(base(), 0x1ef, 1), /RESERVED after COMMITTED_MAJOR/);
    expectFormatError(with_(base(), 0x1f8, 1), /RESERVED after LAUNCH_TCB/);
    expectFormatError(with_(base(), 0x29f, 1), /RESERVED after LAUNCH_TCB/);
    expectFormatError(with_(base(), 0x2a0 + 48, 1), /SIGNATURE.R high bytes/);
    expectFormatError(with_(base(), 0x2e8 + 71, 1), /SIGNATURE.S high bytes/);
    expectFormatError(with_(base(), 0x330, 1), /SIGNATURE reserved/);
    expectFormatError(with_(base(), 0x49f, 1), /SIGNATURE reserved/);
    // TCB_VERSION reserved bytes 2..5 (Milan/Genoa layout)
    expectFormatError(with_(base(), 0x180 + 3, 1), /REPORTED_TCB: reserved/);
    expectFormatError(with_(base(), 0x38 + 2, 1), /CURRENT_TCB: reserved/);
  });

  it("rejects undefined policy, signature-algorithm and signing-key values", () => {
    expectFormatError(with_(base(), 0x0a, base()[0x0a] & ~0x02), /POLICY: reserved bit 17/);
    expectFormatError(with_(base(), 0x0b, 0x04), /POLICY: reserved bits 63:26/); // bit 26
    expectFormatError(with_(base(), 0x0f, 0x80), /POLICY: reserved bits 63:26/); // bit 63
    expectFormatError(with_(base(), 0x34, 2), /SIGNATURE_ALGO/);
    expectFormatError(with_(base(), 0x34, 0), /SIGNATURE_ALGO/);
    expectFormatError(with_(base(), 0x48, 2 << 2), /SIGNING_KEY/);
    expectFormatError(with_(base(), 0x48, 6 << 2), /SIGNING_KEY/);
    expectFormatError(with_(base(), 0x48, 0x20), /SIGNER_INFO: reserved bits/);
    expect(parseSnpReport(with_(base(), 0x48, 7 << 2)).signerInfo.signingKey).toBe("none");
  });

  it("accepts the policy bits the specification defines (CXL, AES-256-XTS, RAPL, ciphertext hiding, page swap)", () => {
    const b = base();
    b[0x0a] |= 0xe0; // bits 21..23
    b[0x0b] |= 0x03; // bits 24..25
    const p = parseSnpReport(b).policy;
    expect(p).toMatchObject({
      cxlAllow: true,
      memAes256Xts: true,
      raplDis: true,
      ciphertextHiding: true,
      pageSwapDisable: true,
    });
  });
});

describe("TCB layouts and products", () => {
  it("decodes Milan/Genoa and Turin TCB_VERSION layouts", () => {
    const bytes = new Uint8Array([1, 2, 0, 0, 0, 0, 3, 4]);
    expect(decodeTcb(bytes, "milan-genoa", "T")).toEqual({
      raw: "0x0403000000000201",
      bootloader: 1,
      tee: 2,
      snp: 3,
      microcode: 4,
    });
    const turin = new Uint8Array([9, 1, 2, 3, 0, 0, 0, 4]);
    expect(decodeTcb(turin, "turin", "T")).toEqual({
      raw: "0x0400000003020109",
      fmc: 9,
      bootloader: 1,
      tee: 2,
      snp: 3,
      microcode: 4,
    });
    expect(() => decodeTcb(new Uint8Array([9, 1, 2, 3, 1, 0, 0, 4]), "turin", "T")).toThrow(
      /reserved bytes 4..6/,
    );
  });

  it("maps CPUID family/model to products", () => {
    expect(productFromCpuid(0x19, 0x01)).toBe("Milan");
    expect(productFromCpuid(0x19, 0x11)).toBe("Genoa");
    expect(productFromCpuid(0x19, 0xa0)).toBe("Genoa");
    expect(productFromCpuid(0x1a, 0x02)).toBe("Turin");
    expect(productFromCpuid(0x17, 0x31)).toBeUndefined();
  });
});

describe("VCEK/VLEK extensions against EXPECTED.json", () => {
  it.each([
    ["go-sev-guest_vcek.testcer", 0, "vcek_extensions"],
    ["trustee_test-vcek.der", 1, "vcek_extensions"],
    ["trustee_test-vlek.der", 2, "vlek_extensions"],
  ] as const)("%s", (name, index, key) => {
    const ext = parseVekExtensions(parseCertificate(file(name)));
    const vector = EXPECTED.vectors[index];
    const e = vector[key];
    expect(ext).toMatchObject({
      productName: e.productName,
      blSpl: e.blSPL,
      teeSpl: e.teeSPL,
      snpSpl: e.snpSPL,
      ucodeSpl: e.ucodeSPL,
      structVersion: 0,
    });
    if (key === "vcek_extensions") {
      expect(hex(ext.hwId!)).toBe(vector.expected.chip_id); // "hwID == chip_id"
      expect(ext.cspId).toBeUndefined();
    } else {
      expect(ext.hwId).toBeUndefined();
      expect(ext.cspId).toBe(e.cspID);
    }
  });

  it("parses the synthetic certificates: raw and OCTET STRING-wrapped hwID", () => {
    const counting = hex(Uint8Array.from({ length: 64 }, (_, i) => i));
    const legacy = parseVekExtensions(parseCertificate(file("trustee_test-vcek-invalid-legacy.der")));
    expect(legacy).toMatchObject({ blSpl: 3, teeSpl: 0, snpSpl: 10, ucodeSpl: 169 });
    expect(hex(legacy.hwId!)).toBe(counting);
    const wrapped = parseVekExtensions(parseCertificate(file("trustee_test-vcek-invalid-new.der")));
    expect(hex(wrapped.hwId!)).toBe(counting);
  });
});
