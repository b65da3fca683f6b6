import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../errors.js";
import { derToPem, parseCertificate, pemToDerList, sha256Fingerprint } from "../pki/index.js";
import { judge } from "../../../test/support/attestation.js";
import type { CheckResult } from "../checks.js";
import { EvidenceFormatError } from "../types.js";
import {
  compareMeasurements,
  fwidFromCertificate,
  formatVbiosVersion,
  MAX_EVIDENCE_BYTES,
  MAX_TRAILING_BYTES,
  NVIDIA_DEVICE_ROOT_PEM,
  NVIDIA_DEVICE_ROOT_SHA256,
  NVIDIA_RIM_ROOT_PEM,
  NVIDIA_RIM_ROOT_SHA256,
  parseNvidiaEvidence,
  parseNvidiaRim,
  verifyNvidiaGpuEvidence,
  verifyNvidiaRim,
  type MeasurementBlock,
} from "./index.js";

const DIR = join(import.meta.dirname, "../../../test/vectors/nvidia-gpu");
const text = (name: string) => readFileSync(join(DIR, name), "utf8");
const EXPECTED = JSON.parse(text("EXPECTED.json"));
const VECTOR = EXPECTED.vectors[0];
const CLAIMS = JSON.parse(text("trustee_hopperAttestationReport-claims.txt"));
const REPORT_HEX = text("trustee_hopperAttestationReport.txt");
const REPORT = new Uint8Array(Buffer.from(REPORT_HEX.trim(), "hex"));
const CHAIN = text("trustee_hopper_cert_chain_case1.txt");
const RIM_XML = text("nvtrust_1010_0200_882_960074001A_PROD.swidtag");
const NONCE = VECTOR.expected_nonce as string;
/** The device chain is valid until 9999; the RIM signer until 2025-09-05. */
const AT = new Date("2025-01-01T00:00:00Z");
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const check = (r: { checks: CheckResult[] }, name: string) => r.checks.find((c) => c.name === name)!;
/** The expected 32-byte nonce as the 64-byte report data the validator compares (NVIDIA carries the first 32). */
const boundTo = (nonce: string) =>
  new Uint8Array(Buffer.concat([Buffer.from(nonce, "hex"), Buffer.alloc(32)]));

describe("pinned roots", () => {
  it("are the NVIDIA device and RIM roots of the vectors, by fingerprint", () => {
    const device = pemToDerList(text("trustee_nvidia_device_root.pem"))[0];
    expect(hex(pemToDerList(NVIDIA_DEVICE_ROOT_PEM)[0])).toBe(hex(device));
    expect(sha256Fingerprint(device)).toBe(EXPECTED.root.sha256_fingerprint);
    expect(NVIDIA_DEVICE_ROOT_SHA256).toBe(EXPECTED.root.sha256_fingerprint);
    const rim = pemToDerList(text("nvtrust_verifier_RIM_root.pem"))[0];
    expect(hex(pemToDerList(NVIDIA_RIM_ROOT_PEM)[0])).toBe(hex(rim));
    expect(NVIDIA_RIM_ROOT_SHA256).toBe(EXPECTED.rim_root.sha256_fingerprint);
  });
});

describe("parseNvidiaEvidence on the H100 sample", () => {
  const e = parseNvidiaEvidence(REPORT_HEX);
  const p = VECTOR.parsed;

  it("parses request and response as EXPECTED", () => {
    expect(createHash("sha256").update(REPORT_HEX).digest("hex")).toBe(VECTOR.sha256);
    expect(e.raw.length).toBe(p.report_len);
    expect(e.request).toMatchObject({ version: 0x11, param1: p.request.param1, param2: p.request.param2 });
    expect(hex(e.request.nonce)).toBe(p.request.nonce);
    expect(e.request.slotId).toBe(p.request.slot);
    const r = e.response;
    expect([r.version, r.param1, r.param2]).toEqual([0x11, p.response.param1, p.response.param2]);
    expect(r.numberOfBlocks).toBe(p.response.nblocks);
    expect(r.blocks.length).toBe(p.n_blocks_parsed);
    expect(r.measurementRecord.length).toBe(p.response.measurement_record_len);
    expect(hex(r.nonce)).toBe(p.response.responder_nonce);
    expect(r.opaqueData.length).toBe(p.response.opaque_len);
    expect(r.signature.length).toBe(p.response.sig_len);
    // The signature covers request || response up to the signature: report[0:4021].
    expect(e.signedBytes.length).toBe(4021);
    for (const [i, b] of p.blocks_first3.entries()) {
      expect(r.blocks[i]).toMatchObject({ index: b.index, specification: b.spec, dmtfType: b.dmtf_type });
      expect(hex(r.blocks[i].value)).toBe(b.value);
    }
  });

  it("decodes the opaque data as EXPECTED and as trustee's claims say", () => {
    const o = e.opaque;
    const po = p.opaque;
    expect(o.raw).toMatchObject({
      vbios_version: po.vbios_version,
      board_id: po.board_id,
      chip_sku: po.chip_sku,
      chip_sku_mod: po["16"],
      project: po.project,
      project_sku: po["18"],
      project_sku_mod: po["19"],
      gpu_info: po.gpu_info,
      msrscnt: po["12"],
      cprinfo: po["13"],
      nvdec0_status: po["11"],
      fwid: po.fwid,
      protected_pcie_status: po["21"],
    });
    expect(o.driverVersion).toBe(po.driver_version);
    const c = CLAIMS.config;
    expect([o.driverVersion, o.vbiosVersion, o.fwid]).toEqual([c.driver_version, c.vbios_version, c.fwid]);
    expect([o.chipSku, o.chipSkuMod, o.project, o.projectSku]).toEqual([
      c.chip_sku,
      c.chip_sku_mod,
      c.project,
      c.project_sku,
    ]);
    expect([o.boardId, o.gpuInfo, o.cprInfo]).toEqual([c.board_id, c.gpu_info, c.cpr_info]);
    const counts = Object.fromEntries(o.measurementCounts!.map((n, i) => [String(i + 1), n]));
    expect(counts).toEqual(c.measurement_count);
    expect(o.nvdec0Status).toBe(c.nvdec0_status.charCodeAt(0)); // trustee prints the byte as "U"
  });

  it("reads the same 64 measurements trustee reports", () => {
    const mine = Object.fromEntries(e.response.blocks.map((b) => [String(b.index), hex(b.value)]));
    expect(mine).toEqual(CLAIMS.measurements);
  });

  it("formats VBIOS versions the way nvtrust does", () => {
    expect(formatVbiosVersion(Uint8Array.from([0x00, 0x9f, 0x00, 0x96, 0x01, 0, 0, 0]))).toBe(
      "96.00.9f.00.01",
    );
    expect(formatVbiosVersion(Uint8Array.from([0x00, 0x74, 0x00, 0x96, 0x1a, 0, 0, 0]))).toBe(
      "96.00.74.00.1a",
    );
  });

  it("accepts raw bytes, hex text and base64 text (as strings or bytes) alike", () => {
    const same = (input: Uint8Array | string) =>
      expect(hex(parseNvidiaEvidence(input).raw)).toBe(hex(REPORT));
    same(REPORT);
    same(new Uint8Array(Buffer.from(REPORT_HEX)));
    same(Buffer.from(REPORT).toString("base64"));
    same(new Uint8Array(Buffer.from(Buffer.from(REPORT).toString("base64"))));
    expect(() => parseNvidiaEvidence(REPORT_HEX.trim() + "0")).toThrow(EvidenceFormatError);
    expect(() => parseNvidiaEvidence("zz-" + REPORT_HEX.trim())).toThrow(/hex or base64/);
  });
});

describe("leaf FWID (TCG DICE 2.23.133.5.4.1)", () => {
  it("equals EXPECTED for the signing certificate and is absent from the BROM certificate", () => {
    const leaf = parseCertificate(pemToDerList(text("trustee_hopper_signing_cert.pem"))[0]);
    expect(fwidFromCertificate(leaf)).toEqual({
      ok: true,
      fwid: VECTOR.parsed.tcg_dice_tcbinfo_fwid_last48[0][1],
    });
    const brom = parseCertificate(pemToDerList(CHAIN)[1]);
    expect(fwidFromCertificate(brom).ok).toBe(false);
  });
});

describe("verifyNvidiaGpuEvidence", () => {
  it("trusts the sample with chain case 1 and the expected nonce; measurement comparison and OCSP are skipped", () => {
    const r = verifyNvidiaGpuEvidence(REPORT_HEX, CHAIN, { at: AT });
    expect(r.kind).toBe("nvidia");
    expect(r.trusted).toBe(true);
    for (const n of ["spdm-structure", "certificate-chain", "signature", "fwid-binding"]) {
      expect(check(r, n).status, n).toBe("pass");
    }
    expect(check(r, "revocation").status).toBe("skipped");
    const judged = judge(r, {}, { at: AT, expectedReportData: boundTo(NONCE) });
    expect(judged.trusted).toBe(true);
    expect(check(judged, "policy.binding").status).toBe("pass");
    expect(check(judged, "policy.measurement").status).toBe("skipped");
    expect(hex(r.reportData!)).toBe(NONCE);
    expect(r.debug).toBe(false);
    const record = parseNvidiaEvidence(REPORT).response.measurementRecord;
    expect(r.measurement).toBe(createHash("sha384").update(record).digest("hex"));
    expect(JSON.parse(JSON.stringify(r.claims))).toEqual(r.claims);
    expect(r.claims.fwid).toBe(CLAIMS.config.fwid);
  });

  it("rejects chain cases 2-4 for trustee's reasons", () => {
    const run = (n: number) =>
      verifyNvidiaGpuEvidence(REPORT_HEX, text(`trustee_hopper_cert_chain_case${n}.txt`), { at: AT });
    const c2 = run(2);
    expect(c2.trusted).toBe(false);
    expect(check(c2, "certificate-chain").detail).toMatch(/at least the signing certificate and the root/);
    const c3 = run(3);
    expect(c3.trusted).toBe(false);
    expect(check(c3, "certificate-chain")).toMatchObject({ status: "fail" });
    expect(check(c3, "certificate-chain").detail).toMatch(/name-chaining/);
    const c4 = run(4);
    expect(c4.trusted).toBe(false);
    expect(check(c4, "fwid-binding")).toMatchObject({ status: "fail" });
    expect(check(c4, "fwid-binding").detail).toMatch(/no TCG DICE FWID extension/);
    expect(check(c4, "signature").status).toBe("fail");
  });

  it("rejects a wrong nonce, and a chain that is not yet valid", () => {
    const r = verifyNvidiaGpuEvidence(REPORT_HEX, CHAIN, { at: AT });
    const wrong = judge(r, {}, { at: AT, expectedReportData: boundTo("00".repeat(32)) });
    expect(wrong.trusted).toBe(false);
    expect(check(wrong, "policy.binding").status).toBe("fail");
    const early = verifyNvidiaGpuEvidence(REPORT_HEX, CHAIN, { at: new Date("2020-01-01T00:00:00Z") });
    expect(check(early, "certificate-chain").detail).toMatch(/validity/);
    expect(early.trusted).toBe(false);
  });

  it("rejects a chain rooted in a different root carrying the NVIDIA root's name", () => {
    const certs = pemToDerList(CHAIN);
    const fakeRoot = Uint8Array.from(certs[4]);
    fakeRoot[fakeRoot.length - 5] ^= 1; // not the pinned bytes any more
    const pem =
      certs
        .slice(0, 4)
        .map((c) => derToPem(c))
        .join("") + derToPem(fakeRoot);
    const r = verifyNvidiaGpuEvidence(REPORT_HEX, pem, { at: AT });
    expect(r.trusted).toBe(false);
    expect(check(r, "certificate-chain").detail).toMatch(/root-pinning/);
  });

  it("accepts the chain as base64 of the PEM text, as nvtrust's SDK sends it", () => {
    const r = verifyNvidiaGpuEvidence(REPORT_HEX, Buffer.from(CHAIN).toString("base64"), { at: AT });
    expect(check(r, "certificate-chain").status).toBe("pass");
    expect(r.trusted).toBe(true);
  });

  it("the validator applies driver/VBIOS allow-lists and reference measurements by index", () => {
    const r = verifyNvidiaGpuEvidence(REPORT_HEX, CHAIN, { at: AT });
    const ok = judge(r, { nvidia: { driver_versions: ["550.90.07"], vbios_versions: ["96.00.9F.00.01"] } });
    expect(check(ok, "policy.firmware_versions").status).toBe("pass");
    const bad = judge(r, { nvidia: { vbios_versions: ["96.00.74.00.1a"] } });
    expect(check(bad, "policy.firmware_versions").status).toBe("fail");
    expect(bad.trusted).toBe(false);
    const m1 = r.claims.measurements["1"];
    expect(
      check(judge(r, { nvidia: { reference_measurements: { "1": [m1] } } }), "policy.measurement").status,
    ).toBe("pass");
    const other = judge(r, { nvidia: { reference_measurements: { "1": ["ab".repeat(48)] } } });
    expect(check(other, "policy.measurement").status).toBe("fail");
  });

  it("rejects invalid options with ValidationError", () => {
    expect(() => verifyNvidiaGpuEvidence(REPORT_HEX, CHAIN, { at: new Date(NaN) })).toThrow(ValidationError);
  });
});

describe("the VBIOS RIM (swidtag)", () => {
  it("verifies its enveloped XML signature and chain to the pinned RIM root while the signer is valid", () => {
    const v = verifyNvidiaRim(RIM_XML, { at: AT });
    expect(v.checks.map((c) => [c.name, c.status])).toEqual([
      ["rim-certificate-chain", "pass"],
      ["rim-signature", "pass"],
    ]);
    expect(v.trusted).toBe(true);
    expect(v.references.authenticated?.rootFingerprint).toBe(EXPECTED.rim_root.sha256_fingerprint);
    expect(v.rim.version).toBe("96.00.74.00.1A");
    expect(v.rim.component).toBe("vbios");
    expect(v.rim.certificates.map((c) => parseCertificate(c).subjectCommonName)).toEqual([
      "HCC RIM L4 Signer",
      "NVIDIA Reference Value L3 GH100 001",
      "NVIDIA Reference Value GH100 CA",
      "NVIDIA CoRIM signing Root CA",
    ]);
    // After the L4 signer expired (2025-09-05) the chain fails; the signature itself still verifies.
    const late = verifyNvidiaRim(RIM_XML, { at: new Date("2025-09-06T00:00:00Z") });
    expect(late.trusted).toBe(false);
    expect(late.checks[0].detail).toMatch(/expired/);
  });

  it("lists the 64 Resource measurements with RIM index + 1 = SPDM index", () => {
    const rim = parseNvidiaRim(RIM_XML);
    const resources = [
      ...RIM_XML.matchAll(
        /<ns0:Resource [^>]*index="(\d+)" active="(True|False)"[^>]*ns2:Hash0="([0-9a-f]+)"/g,
      ),
    ];
    expect(rim.references.measurements.length).toBe(resources.length);
    expect(resources.length).toBe(64);
    for (const [i, m] of rim.references.measurements.entries()) {
      expect(m.index).toBe(Number(resources[i][1]) + 1);
      expect(m.active).toBe(resources[i][2] === "True");
      expect(m.alternatives[0]).toBe(resources[i][3]);
    }
  });

  it("detects any change to a golden value or to the signature", () => {
    const hash = /ns2:Hash0="(b558fdac[0-9a-f]+)"/.exec(RIM_XML)![1];
    const edited = RIM_XML.replace(hash, hash.slice(0, -1) + (hash.endsWith("0") ? "1" : "0"));
    const v = verifyNvidiaRim(edited, { at: AT });
    expect(v.trusted).toBe(false);
    expect(v.checks[1].detail).toMatch(/digest/);
    expect(v.references.authenticated).toBeUndefined();
    const sig = /<ds:SignatureValue>([^<]+)</.exec(RIM_XML)![1];
    const flipped = RIM_XML.replace(sig, (sig[0] === "A" ? "B" : "A") + sig.slice(1));
    expect(verifyNvidiaRim(flipped, { at: AT }).checks[1]).toMatchObject({ status: "fail" });
    const extraAttribute = RIM_XML.replace('name="Measurement_0"', 'name="Measurement_0" note="x"');
    expect(verifyNvidiaRim(extraAttribute, { at: AT }).trusted).toBe(false);
  });

  it("rejects DOCTYPEs and malformed XML", () => {
    expect(() => parseNvidiaRim('<!DOCTYPE x [<!ENTITY a "b">]>' + RIM_XML)).toThrow(EvidenceFormatError);
    expect(() => parseNvidiaRim(RIM_XML.replace("</ns0:Payload>", "</ns0:Payloads>"))).toThrow(/mismatched/);
    expect(() => parseNvidiaRim(RIM_XML.replace('index="5"', 'index="4"'))).toThrow(/duplicate index/);
  });

  it("does not match this report: the RIM is for VBIOS 96.00.74.00.1A, the GPU runs 96.00.9f.00.01", () => {
    const { references } = verifyNvidiaRim(RIM_XML, { at: AT });
    const r = judge(
      verifyNvidiaGpuEvidence(REPORT_HEX, CHAIN, { at: AT }),
      {},
      {
        at: AT,
        expectedReportData: boundTo(NONCE),
        nvidiaReferences: [references],
      },
    );
    expect(r.trusted).toBe(false);
    expect(check(r, "policy.rim_versions").status).toBe("fail");
    expect(check(r, "policy.measurement").status).toBe("fail");
    expect(check(r, "policy.rim_authenticity").status).toBe("pass");
  });
});

describe("compareMeasurements", () => {
  const block = (index: number, byte: number): MeasurementBlock => ({
    index,
    specification: 1,
    dmtfType: 1,
    value: new Uint8Array(48).fill(byte),
  });
  const ref = (index: number, bytes: number[], active = true) => ({
    index,
    size: 48,
    active,
    alternatives: bytes.map((b) => b.toString(16).padStart(2, "0").repeat(48)),
  });
  const blocks = [block(1, 1), block(2, 2), block(36, 0x36)];

  it("accepts any listed alternative and ignores inactive entries", () => {
    const out = compareMeasurements(
      blocks,
      [{ component: "vbios", measurements: [ref(1, [9, 1]), ref(2, [7], false)] }],
      0xaa,
    );
    expect(out).toEqual({ ok: true, compared: 1, skippedNvdec: false });
  });

  it("fails a mismatch, a missing index and a conflict between sets", () => {
    expect(
      compareMeasurements(blocks, [{ component: "vbios", measurements: [ref(2, [3])] }], 0xaa),
    ).toMatchObject({
      ok: false,
      mismatched: [2],
    });
    expect(
      compareMeasurements(blocks, [{ component: "vbios", measurements: [ref(5, [0])] }], 0xaa),
    ).toMatchObject({
      ok: false,
      mismatched: [5],
    });
    const conflict = compareMeasurements(
      blocks,
      [
        { component: "vbios", measurements: [ref(1, [1])] },
        { component: "driver", measurements: [ref(1, [1])] },
      ],
      0xaa,
    );
    expect(conflict.ok).toBe(false);
  });

  it("skips index 36 only when NVDEC0 is reported disabled (0x55)", () => {
    const refs = [{ component: "driver" as const, measurements: [ref(1, [1]), ref(36, [0x99])] }];
    expect(compareMeasurements(blocks, refs, 0x55)).toEqual({ ok: true, compared: 1, skippedNvdec: true });
    expect(compareMeasurements(blocks, refs, 0xaa)).toMatchObject({ ok: false, mismatched: [36] });
    expect(compareMeasurements(blocks, refs, undefined)).toMatchObject({ ok: false, mismatched: [36] });
  });
});

describe("tampering and malformed evidence", () => {
  const e = parseNvidiaEvidence(REPORT);

  it("rejects systematic byte flips over request, response and signature", () => {
    const positions: number[] = [];
    const recordEnd = 37 + 8 + e.response.measurementRecord.length;
    for (let i = 0; i < 45; i++) positions.push(i); // request and response header
    const sigStart = REPORT.length - 96;
    for (let i = 45; i < recordEnd; i += 7) positions.push(i); // measurement blocks, every 7th byte
    for (let i = recordEnd; i < recordEnd + 34; i++) positions.push(i); // responder nonce, OpaqueLength
    for (let i = recordEnd + 34; i < sigStart; i += 2) positions.push(i); // opaque data, every 2nd byte
    for (let i = sigStart; i < REPORT.length; i++) positions.push(i); // signature
    let rejected = 0;
    for (const pos of positions) {
      const t = Uint8Array.from(REPORT);
      t[pos] ^= 1 << (pos % 8);
      try {
        if (!verifyNvidiaGpuEvidence(t, CHAIN, { at: AT }).trusted) rejected++;
      } catch (err) {
        if (!(err instanceof EvidenceFormatError)) throw err;
        rejected++;
      }
    }
    expect(positions.length).toBeGreaterThan(800);
    expect(rejected).toBe(positions.length);
  });

  it("rejects systematic byte flips over every certificate of the chain", () => {
    const certs = pemToDerList(CHAIN);
    let total = 0;
    let rejected = 0;
    for (const [n, cert] of certs.entries()) {
      for (let pos = n % 4; pos < cert.length; pos += 4) {
        const t = Uint8Array.from(cert);
        t[pos] ^= 1 << (pos % 8);
        const pem = certs.map((c, j) => derToPem(j === n ? t : c)).join("");
        total++;
        if (!verifyNvidiaGpuEvidence(REPORT, pem, { at: AT }).trusted) rejected++;
      }
    }
    expect(total).toBeGreaterThan(800);
    expect(rejected).toBe(total);
  });

  it("rejects every truncation, trailing bytes and oversized input with EvidenceFormatError", () => {
    for (let n = 0; n < REPORT.length; n++) {
      expect(() => parseNvidiaEvidence(REPORT.subarray(0, n))).toThrow(EvidenceFormatError);
    }
    const longer = new Uint8Array(REPORT.length + MAX_TRAILING_BYTES + 1);
    longer.set(REPORT);
    expect(() => parseNvidiaEvidence(longer)).toThrow(/trailing/);
    expect(() => parseNvidiaEvidence(new Uint8Array(MAX_EVIDENCE_BYTES + 1))).toThrow(/exceeds/);
    expect(() => verifyNvidiaGpuEvidence(new Uint8Array(MAX_EVIDENCE_BYTES + 1), CHAIN)).toThrow(
      EvidenceFormatError,
    );
  });
});

describe("unsigned bytes after the SPDM signature (as Confidential Containers tooling collects them)", () => {
  const withTrailing = (extra: Uint8Array) => {
    const out = new Uint8Array(REPORT.length + extra.length);
    out.set(REPORT);
    out.set(extra, REPORT.length);
    return out;
  };

  it("are accepted up to the bound, never interpreted, and reported as a warning", () => {
    for (const extra of [
      new Uint8Array([0xde, 0xad, 0xbe, 0xef]),
      new Uint8Array(MAX_TRAILING_BYTES).fill(0xff),
    ]) {
      const bytes = withTrailing(extra);
      const parsed = parseNvidiaEvidence(bytes);
      expect(parsed.signedBytes.length).toBe(4021);
      expect(hex(parsed.response.trailing)).toBe(hex(extra));
      const r = verifyNvidiaGpuEvidence(bytes, CHAIN, { at: AT });
      expect(r.trusted, JSON.stringify(r.checks)).toBe(true);
      expect(check(r, "signature").status).toBe("pass");
      expect(check(r, "trailing-bytes")).toMatchObject({ status: "warn" });
      expect(check(r, "trailing-bytes").detail).toMatch(new RegExp(`^${extra.length} unsigned byte`));
      // Hex text, as the samples are exchanged, too.
      expect(verifyNvidiaGpuEvidence(hex(bytes), CHAIN, { at: AT }).trusted).toBe(true);
    }
  });

  it("report no warning when there are none", () => {
    const r = verifyNvidiaGpuEvidence(REPORT, CHAIN, { at: AT });
    expect(r.checks.some((c) => c.name === "trailing-bytes")).toBe(false);
  });

  it("past the bound are refused as malformed", () => {
    expect(() => parseNvidiaEvidence(withTrailing(new Uint8Array(MAX_TRAILING_BYTES + 1)))).toThrow(
      /more than 64 trailing bytes/,
    );
  });

  it("do not loosen the signed region: a flipped signed byte or signature byte still fails", () => {
    for (const pos of [40, 2000, 4020, 4021, REPORT.length - 1]) {
      const t = withTrailing(new Uint8Array(8));
      t[pos] ^= 1;
      let trusted = false;
      try {
        trusted = verifyNvidiaGpuEvidence(t, CHAIN, { at: AT }).trusted;
      } catch (err) {
        if (!(err instanceof EvidenceFormatError)) throw err;
      }
      expect(trusted, String(pos)).toBe(false);
    }
  });
});

describe("a chain without its root does not hide the signature check", () => {
  it("chain case 2 (root only) and a leaf-only chain still check the SPDM signature with the leaf", () => {
    const leafOnly = derToPem(pemToDerList(CHAIN)[0]);
    const r = verifyNvidiaGpuEvidence(REPORT, leafOnly, { at: AT });
    expect(check(r, "certificate-chain").detail).toMatch(/at least the signing certificate and the root/);
    expect(check(r, "signature").status).toBe("pass");
    expect(check(r, "fwid-binding").status).toBe("pass");
    expect(r.trusted).toBe(false);
  });
});
