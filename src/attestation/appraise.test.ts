import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { AttestationReport } from "../schemas/attestation.js";
import { appraiseEvidence, type Appraisal, type AppraiseOptions } from "./appraise.js";
import { bindReportData } from "./binding.js";
import { decodeEvidenceText, guessEvidenceKind } from "./evidence-kind.js";
import { NonceIssuer } from "./nonce.js";
import { pemToDerList } from "./pki/index.js";
import { parseTrustPolicy } from "./policy/load.js";
import { encodeSnpCertTable, parseSnpCertTable } from "./providers/snp-cert-table.js";
import { InsecureProvider, SimulatedProvider } from "./providers/software.js";
import { AttestationError, type SnpClaims, type TdxClaims } from "./types.js";

const VECTORS = fileURLToPath(new URL("../../test/vectors/", import.meta.url));
const bin = (p: string) => new Uint8Array(readFileSync(join(VECTORS, p)));
const text = (p: string) => readFileSync(join(VECTORS, p), "utf8");
const json = (p: string) => JSON.parse(text(p));
/** A vector's entry in EXPECTED.json (untyped fixture JSON, read field by field in the tests). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type VectorEntry = Record<string, any>;
const expected = (tee: string, file: string): VectorEntry =>
  (json(`${tee}/EXPECTED.json`).vectors as VectorEntry[]).find((v) => v.file === file)!;

const milanChain = () => pemToDerList(text("sev-snp/go-sev-guest_ask_ark_milan.pem"));

/** The real vectors with what each needs, and the validation time their sources use. */
const CASES = {
  snp: () => ({
    bytes: bin("sev-snp/trustee_test-report.bin"),
    opts: {
      at: new Date("2025-01-01T00:00:00Z"),
      certificates: [bin("sev-snp/trustee_test-vcek.der"), ...milanChain()],
    },
  }),
  tdx: () => ({
    bytes: bin("tdx/dcap-qvl_tdx_quote.bin"),
    opts: {
      at: new Date("2025-07-19T10:00:34Z"),
      collateral: json("tdx/dcap-qvl_tdx_quote_collateral.json"),
    },
  }),
  sgx: () => ({
    bytes: bin("sgx/dcap-qvl_sgx_quote.bin"),
    opts: {
      at: new Date("2025-07-19T10:01:17Z"),
      collateral: json("sgx/dcap-qvl_sgx_quote_collateral.json"),
    },
  }),
  nitro: () => ({
    bytes: bin("nitro/blocky-nitrite_nitro_attestation.cbor"),
    opts: { at: new Date("2024-09-07T14:37:40Z") },
  }),
  nvidia: () => ({
    bytes: decodeEvidenceText(bin("nvidia-gpu/trustee_hopperAttestationReport.txt")),
    opts: {
      at: new Date("2025-01-01T00:00:00Z"),
      certificates: pemToDerList(text("nvidia-gpu/trustee_hopper_cert_chain_case1.txt")),
    },
  }),
};

async function appraise(bytes: Uint8Array, opts: AppraiseOptions): Promise<Appraisal> {
  return appraiseEvidence(bytes, { requireFreshness: false, ...opts });
}
const check = (a: Appraisal, name: string) => a.result.checks.find((c) => c.name === name);

describe("appraiseEvidence on real vectors", () => {
  it("SNP (Milan, VCEK): trusted, the report names AMD_SEV_SNP and the measurement from EXPECTED.json", async () => {
    const { bytes, opts } = CASES.snp();
    const a = await appraise(bytes, opts);
    expect(a.trusted, JSON.stringify(a.result.checks)).toBe(true);
    const exp = expected("sev-snp", "trustee_test-report.bin").expected;
    expect(a.report).toMatchObject({
      hardware_type: "AMD_SEV_SNP",
      measurement_hash: exp.measurement,
      status: "TRUSTED",
    });
    // enclave_signature: R and S as big-endian 48-byte integers (little-endian fields at 0x2A0 / 0x2E8).
    const le = (o: number) =>
      Buffer.from(bytes.subarray(o, o + 48))
        .reverse()
        .toString("hex");
    expect(a.report.enclave_signature).toBe(le(0x2a0) + le(0x2e8));
    expect(AttestationReport.safeParse(a.report).success).toBe(true);
    expect(a.validUntil?.getTime()).toBe(opts.at.getTime() + 3600_000);
  });

  it("SNP with the debug bit set is rejected by default and accepted only with allow_debug", async () => {
    const bytes = bin("sev-snp/go-sev-guest_attestation.bin");
    const opts = {
      at: new Date("2025-01-01T00:00:00Z"),
      certificates: [bin("sev-snp/go-sev-guest_vcek.testcer")],
    };
    const a = await appraise(bytes, opts);
    expect(a.trusted).toBe(false);
    expect(check(a, "policy.debug")?.status).toBe("fail");
    expect(a.report.status).toBe("UNTRUSTED");
    const b = await appraise(bytes, { ...opts, policy: parseTrustPolicy({ allow_debug: true }) });
    expect(b.trusted, JSON.stringify(b.result.checks)).toBe(true);
  });

  it("SNP without a VCEK fails closed and still shows the parsed claims", async () => {
    const a = await appraise(bin("sev-snp/trustee_test-report.bin"), { at: new Date("2025-01-01") });
    expect(a.trusted).toBe(false);
    expect(check(a, "certificates")?.detail).toMatch(/online service/);
    expect(check(a, "policy.debug")?.status).toBe("pass");
    expect(check(a, "report-signature")?.detail).toMatch(/VCEK\/VLEK/);
    expect((a.result.claims as SnpClaims).measurement).toBe(
      expected("sev-snp", "trustee_test-report.bin").expected.measurement,
    );
  });

  it("SNP certificates carried in a configfs certificate table verify the report", async () => {
    const [ask, ark] = milanChain();
    const table = encodeSnpCertTable([
      { guid: "c0b406a4-a803-4952-9743-3fb6014cd0ae", der: ark },
      { guid: "4ab7b379-bbac-4fe4-a02f-05aef327c782", der: ask },
      { guid: "63da758d-e664-4564-adc5-f4b93be8accd", der: bin("sev-snp/trustee_test-vcek.der") },
    ]);
    const evidence = {
      kind: "snp" as const,
      bytes: bin("sev-snp/trustee_test-report.bin"),
      certificates: parseSnpCertTable(table),
      collectedAt: new Date(),
      label: "HARDWARE" as const,
    };
    const a = await appraiseEvidence(evidence, { at: new Date("2025-01-01"), requireFreshness: false });
    expect(a.trusted, JSON.stringify(a.result.checks)).toBe(true);
  });

  it("TDX (dcap-qvl, UpToDate): trusted; a policy not accepting UpToDate rejects it", async () => {
    const { bytes, opts } = CASES.tdx();
    const a = await appraise(bytes, opts);
    expect(a.trusted, JSON.stringify(a.result.checks)).toBe(true);
    expect((a.result.claims as TdxClaims).tcbStatus).toBe("UpToDate");
    expect(a.report.hardware_type).toBe("INTEL_TDX");
    const b = await appraise(bytes, {
      ...opts,
      policy: parseTrustPolicy({ accepted_tcb_statuses: ["SWHardeningNeeded"] }),
    });
    expect(b.trusted).toBe(false);
    expect(check(b, "policy.tcb_status")?.status).toBe("fail");
  });

  it("TDX without collateral fails closed, naming what is missing", async () => {
    const a = await appraise(bin("tdx/trustee_tdx_quote_5.dat"), { at: new Date("2025-01-01T00:00:00Z") });
    expect(a.trusted).toBe(false);
    expect(check(a, "collateral")?.detail).toMatch(/TCB status/);
    for (const name of ["quote-signature", "pck-chain", "qe-report-signature", "qe-report-data"]) {
      expect(check(a, name)?.status, name).toBe("pass");
    }
    expect(check(a, "tcb-status")?.detail).toMatch(/collateral/);
    const td = expected("tdx", "trustee_tdx_quote_5.dat").parsed.td_body;
    expect(a.report.measurement_hash).toBe(td.mrtd);
    expect((a.result.claims as TdxClaims).reportData).toBe(td.reportdata);
  });

  it("TDX with the DEBUG attribute is flagged debug from the bytes alone", async () => {
    const a = await appraise(bin("tdx/trustee_tdx_quote_4.dat"), { at: new Date("2024-01-01") });
    expect(a.result.debug).toBe(true);
    expect(check(a, "policy.debug")?.detail).toMatch(/TD_ATTRIBUTES\.DEBUG is set/);
    expect(a.trusted).toBe(false);
  });

  it("SGX (dcap-qvl): ConfigurationAndSWHardeningNeeded is refused by the default policy, accepted when listed", async () => {
    const { bytes, opts } = CASES.sgx();
    const a = await appraise(bytes, opts);
    expect((a.result.claims as TdxClaims).tcbStatus).toBe("ConfigurationAndSWHardeningNeeded");
    expect(a.trusted).toBe(false);
    expect(check(a, "policy.tcb_status")?.status).toBe("fail");
    const b = await appraise(bytes, {
      ...opts,
      policy: parseTrustPolicy({ accepted_tcb_statuses: ["UpToDate", "ConfigurationAndSWHardeningNeeded"] }),
    });
    expect(b.trusted, JSON.stringify(b.result.checks)).toBe(true);
    expect(b.report.hardware_type).toBe("INTEL_SGX");
  });

  it("Nitro: trusted at the document time; stale past max_evidence_age_seconds", async () => {
    const { bytes, opts } = CASES.nitro();
    const a = await appraise(bytes, opts);
    expect(a.trusted, JSON.stringify(a.result.checks)).toBe(true);
    expect(a.report.measurement_hash).toBe(
      expected("nitro", "blocky-nitrite_nitro_attestation.cbor").parsed.pcrs["0"],
    );
    // 10 minutes later the leaf certificate is still valid (3 h) but the evidence is older than 300 s.
    const b = await appraise(bytes, { at: new Date("2024-09-07T14:47:40Z") });
    expect(check(b, "certificate-chain")?.status).toBe("pass");
    expect(check(b, "policy.age")?.status).toBe("fail");
    expect(b.trusted).toBe(false);
  });

  it("Nitro self-signed document is rejected against the AWS root", async () => {
    const a = await appraise(bin("nitro/blocky-nitrite_selfsigned_attestation.cbor"), {
      at: new Date("2024-09-07"),
    });
    expect(a.kind).toBe("nitro");
    expect(a.trusted).toBe(false);
  });

  it("NVIDIA H100: trusted with the full chain, refused with the broken chains", async () => {
    const { bytes, opts } = CASES.nvidia();
    const a = await appraise(bytes, opts);
    expect(a.trusted, JSON.stringify(a.result.checks)).toBe(true);
    expect(a.report.hardware_type).toBe("NVIDIA_H100_HOPPER");
    expect(a.report.enclave_signature).toBe(Buffer.from(bytes.subarray(bytes.length - 96)).toString("hex"));
    for (const c of [2, 3, 4]) {
      const certs = pemToDerList(text(`nvidia-gpu/trustee_hopper_cert_chain_case${c}.txt`));
      const b = await appraise(bytes, { ...opts, certificates: certs });
      expect(b.trusted, `case${c}`).toBe(false);
    }
    // The binding is the SPDM request nonce: the first 32 bytes of the 64-byte report data.
    const nonce = expected("nvidia-gpu", "trustee_hopperAttestationReport.txt").parsed.request.nonce;
    const rd = new Uint8Array(64);
    rd.set(Buffer.from(nonce, "hex"));
    const c = await appraise(bytes, { ...opts, expectedReportData: rd });
    expect(check(c, "policy.binding")?.status).toBe("pass");
  });

  it("NVIDIA H100 with unsigned bytes after the signature: trusted, with a warning; the signature is still the SPDM one", async () => {
    const { bytes, opts } = CASES.nvidia();
    const padded = new Uint8Array(bytes.length + 6);
    padded.set(bytes);
    padded.set([1, 2, 3, 4, 5, 6], bytes.length);
    const a = await appraise(padded, opts);
    expect(a.trusted, JSON.stringify(a.result.checks)).toBe(true);
    expect(check(a, "trailing-bytes")?.status).toBe("warn");
    expect(a.report.enclave_signature).toBe(Buffer.from(bytes.subarray(bytes.length - 96)).toString("hex"));
  });

  it("every vector's kind is recognised from its bytes (hex and base64 text too)", () => {
    const kinds: [string, string][] = [
      ["sev-snp/go-sev-guest_attestation.bin", "snp"],
      ["sev-snp/trustee_test-vlek-report.bin", "snp"],
      ["tdx/go-tdx-guest_cos-113-tdx-quote.dat", "tdx"],
      ["tdx/go-tdx-guest_quote_v5_sample.dat", "tdx"],
      ["tdx/trustee_tdx_quote_6.dat", "tdx"],
      ["sgx/dcap-qvl_sgx_quote.bin", "sgx"],
      ["nitro/blocky-nitrite_nitro_attestation.cbor", "nitro"],
      ["nvidia-gpu/trustee_hopperAttestationReport.txt", "nvidia"],
    ];
    for (const [file, kind] of kinds)
      expect(guessEvidenceKind(decodeEvidenceText(bin(file)))?.kind, file).toBe(kind);
    expect(guessEvidenceKind(bin("nitro/blocky-nitrite_selfsigned_cert.der"))).toBeUndefined(); // a certificate
  });
});

describe("trust policy in the appraisal", () => {
  it("applies measurement reference values as whole tuples", async () => {
    const { bytes, opts } = CASES.snp();
    const exp = expected("sev-snp", "trustee_test-report.bin").expected;
    const good = await appraise(bytes, {
      ...opts,
      policy: parseTrustPolicy({
        snp: { reference_values: [{ measurement: exp.measurement, host_data: exp.host_data }] },
      }),
    });
    expect(check(good, "policy.measurement")?.status).toBe("pass");
    expect(good.trusted).toBe(true);
    const mixed = await appraise(bytes, {
      ...opts,
      policy: parseTrustPolicy({
        snp: {
          reference_values: [
            { measurement: exp.measurement, host_data: "11".repeat(32) },
            { measurement: "22".repeat(48), host_data: exp.host_data },
          ],
        },
      }),
    });
    expect(check(mixed, "policy.measurement")?.status).toBe("fail");
    expect(mixed.trusted).toBe(false);
  });

  it("enforces snp.min_tcb through the SNP verifier", async () => {
    const { bytes, opts } = CASES.snp();
    const a = await appraise(bytes, {
      ...opts,
      policy: parseTrustPolicy({ snp: { min_tcb: { microcode: 200 } } }),
    });
    expect(a.trusted).toBe(false);
    expect(a.result.checks.some((c) => c.status === "fail" && /tcb/i.test(c.name))).toBe(true);
  });

  it("refuses kinds outside allowed_kinds", async () => {
    const { bytes, opts } = CASES.nitro();
    const a = await appraise(bytes, { ...opts, policy: parseTrustPolicy({ allowed_kinds: ["snp"] }) });
    expect(check(a, "policy.kind")?.status).toBe("fail");
    expect(a.trusted).toBe(false);
  });

  it("rejects simulated and insecure evidence by default, saying why", async () => {
    const rd = new Uint8Array(64);
    const sim = await new SimulatedProvider({ measurement: new Uint8Array(48) }).collect(rd);
    const a = await appraiseEvidence(sim, { expectedReportData: rd });
    expect(a.trusted).toBe(false);
    expect(a.report).toMatchObject({ hardware_type: "SIMULATED", status: "UNTRUSTED" });
    expect(check(a, "policy.kind")?.detail).toMatch(/not hardware-backed.*allow_simulated: false/);
    const b = await appraiseEvidence(sim, {
      expectedReportData: rd,
      policy: parseTrustPolicy({ allow_simulated: true }),
    });
    expect(b.trusted, JSON.stringify(b.result.checks)).toBe(true);
    const ins = await new InsecureProvider({ measurement: new Uint8Array(48) }).collect(rd);
    const c = await appraiseEvidence(ins, {
      expectedReportData: rd,
      policy: parseTrustPolicy({ allow_simulated: true }),
    });
    expect(c.report.hardware_type).toBe("INSECURE");
    expect(check(c, "policy.kind")?.detail).toMatch(/allow_insecure: false/);
    const d = await appraiseEvidence(ins, {
      expectedReportData: rd,
      policy: parseTrustPolicy({ allow_insecure: true }),
    });
    expect(d.trusted).toBe(true);
  });
});

describe("freshness and binding", () => {
  const policy = parseTrustPolicy({ allow_simulated: true });
  const provider = new SimulatedProvider({ measurement: new Uint8Array(48).fill(1) });

  it("accepts evidence bound to a live nonce and the node key, once", async () => {
    const issuer = new NonceIssuer();
    const { nonce } = issuer.issue();
    const ev = await provider.collect(bindReportData(nonce, provider.publicKey));
    const binding = { nonce, publicKey: provider.publicKey };
    const a = await appraiseEvidence(ev, { policy, nonceIssuer: issuer, binding });
    expect(a.trusted, JSON.stringify(a.result.checks)).toBe(true);
    expect(check(a, "policy.binding")?.status).toBe("pass");
    expect(a.report.node_id).toMatch(/^key-sha256:[0-9a-f]{32}$/);
    const replay = await appraiseEvidence(ev, { policy, nonceIssuer: issuer, binding });
    expect(replay.trusted).toBe(false);
    expect(check(replay, "policy.binding")?.detail).toMatch(/NONCE_REUSED/);
  });

  it("refuses evidence bound to another key or another nonce", async () => {
    const issuer = new NonceIssuer();
    const { nonce } = issuer.issue();
    const ev = await provider.collect(bindReportData(nonce, provider.publicKey));
    const other = new Uint8Array(32).fill(9);
    const a = await appraiseEvidence(ev, {
      policy,
      nonceIssuer: issuer,
      binding: { nonce, publicKey: other },
    });
    expect(check(a, "policy.binding")?.status).toBe("fail");
    const n2 = issuer.issue().nonce;
    const b = await appraiseEvidence(ev, {
      policy,
      nonceIssuer: issuer,
      binding: { nonce: n2, publicKey: provider.publicKey },
    });
    expect(b.trusted).toBe(false);
  });

  it("requires a binding unless told otherwise", async () => {
    const ev = await provider.collect(new Uint8Array(64));
    const a = await appraiseEvidence(ev, { policy });
    expect(check(a, "policy.binding")?.status).toBe("fail");
    expect(a.trusted).toBe(false);
  });
});

describe("malformed input", () => {
  it("yields an UNTRUSTED appraisal with a format check when the kind is given", async () => {
    const truncated = bin("sev-snp/trustee_test-report.bin").subarray(0, 1000);
    const a = await appraise(truncated, { kind: "snp" });
    expect(a.trusted).toBe(false);
    expect(check(a, "format")?.status).toBe("fail");
    expect(a.report.status).toBe("UNTRUSTED");
  });

  it("throws a typed error for bytes of no known kind", async () => {
    const err = await appraise(new Uint8Array(100).fill(0x41), {}).catch((e) => e);
    expect(err).toBeInstanceOf(AttestationError);
    expect(err.code).toBe("EVIDENCE_UNRECOGNISED");
  });

  it("notices evidence whose declared kind disagrees with its bytes", async () => {
    const { bytes, opts } = CASES.nitro();
    const a = await appraiseEvidence(
      { kind: "snp", bytes, collectedAt: new Date(), label: "HARDWARE" },
      { ...opts, requireFreshness: false },
    );
    expect(check(a, "kind-consistency")?.status).toBe("fail");
    expect(a.trusted).toBe(false);
  });

  it("notices simulated evidence presented with a HARDWARE label", async () => {
    const rd = new Uint8Array(64);
    const sim = await new SimulatedProvider({ measurement: new Uint8Array(48) }).collect(rd);
    const a = await appraiseEvidence(
      { ...sim, label: "HARDWARE" },
      { expectedReportData: rd, policy: parseTrustPolicy({ allow_simulated: true }) },
    );
    expect(check(a, "label-consistency")?.status).toBe("fail");
    expect(a.trusted).toBe(false);
  });
});
