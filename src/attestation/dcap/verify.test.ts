import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../errors.js";
import { judge } from "../../../test/support/attestation.js";
import type { CheckResult } from "../checks.js";
import { EvidenceFormatError } from "../types.js";
import { dcapCollateralFromPcs, type DcapCollateral } from "./collateral.js";
import { verifySgxQuote, verifyTdxQuote } from "./verify.js";

const VECTORS = fileURLToPath(new URL("../../../test/vectors/", import.meta.url));
const read = (path: string) => new Uint8Array(readFileSync(VECTORS + path));
const text = (path: string) => readFileSync(VECTORS + path, "utf8");
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

const tdxExpected = JSON.parse(text("tdx/EXPECTED.json"));
const sgxExpected = JSON.parse(text("sgx/EXPECTED.json"));
const expectedTdx = (id: string) => tdxExpected.vectors.find((v: { id: string }) => v.id === id);

const qvlTdxCollateral = JSON.parse(text("tdx/dcap-qvl_tdx_quote_collateral.json")) as DcapCollateral;
const qvlSgxCollateral = JSON.parse(text("sgx/dcap-qvl_sgx_quote_collateral.json")) as DcapCollateral;
/** dcap-qvl's test times: min(nextUpdate of all collateral) - 1 s, from EXPECTED.json. */
const QVL_TDX_AT = new Date(tdxExpected.vectors[2].expected_outcome.validation_time_unix * 1000);
const QVL_SGX_AT = new Date(sgxExpected.vectors[0].expected_outcome.validation_time_unix * 1000);
/** go-tdx-guest's test time for the v4 collateral. */
const GO_TDX_AT = new Date("2023-07-01T01:00:00Z");

function goTdxCollateral(tcbInfoFile = "go-tdx-guest_sample_tcbInfo_response"): DcapCollateral {
  return dcapCollateralFromPcs({
    tcbInfoResponse: text(`tdx/${tcbInfoFile}`),
    tcbInfoIssuerChain: text("tdx/go-tdx-guest_tcbinfo_issuer_chain.pem"),
    qeIdentityResponse: text("tdx/go-tdx-guest_sample_qeIdentity_response"),
    qeIdentityIssuerChain: text("tdx/go-tdx-guest_tcbinfo_issuer_chain.pem"),
    pckCrl: read("tdx/go-tdx-guest_pckcrl"),
    pckCrlIssuerChain: text("tdx/go-tdx-guest_pckcrl_issuer_chain.pem"),
    rootCaCrl: read("tdx/go-tdx-guest_rootcrl.der"),
  });
}

type Checked = { checks: CheckResult[] };
const status = (r: Checked, name: string) => r.checks.find((c) => c.name === name)?.status;
const failed = (r: Checked) => r.checks.filter((c) => c.status === "fail").map((c) => c.name);
const QUOTE_CHECKS = [
  "qe-vendor-id",
  "quote-signature",
  "pck-chain",
  "pck-extensions",
  "qe-report-signature",
  "qe-report-data",
];
const COLLATERAL_CHECKS = [
  "pck-crl",
  "tcb-info-signature",
  "qe-identity-signature",
  "root-ca-crl",
  "tcb-info",
  "qe-identity",
];

describe("dcap-qvl TDX vector (full collateral)", () => {
  const quote = read("tdx/dcap-qvl_tdx_quote.bin");
  const e = expectedTdx("dcap-qvl-tdx-v5-uptodate");

  it("is trusted at dcap-qvl's test time with status UpToDate and no advisories", () => {
    const r = verifyTdxQuote(quote, { at: QVL_TDX_AT, collateral: qvlTdxCollateral });
    expect(failed(r)).toEqual([]);
    expect(r.trusted).toBe(true);
    expect(r.kind).toBe("tdx");
    expect(r.claims.tcbStatus).toBe(e.collateral_check.platform_tcb_status[0]);
    expect(r.claims.tcbDate).toBe(e.collateral_check.platform_tcb_status[1]);
    expect(r.claims.advisoryIds).toEqual([]);
    expect(r.claims.qeTcbStatus).toBe(e.collateral_check.qe_tcb_status[0]);
    expect(r.measurement).toBe(e.parsed.td_body.mrtd);
    expect(hex(r.reportData!)).toBe(e.parsed.td_body.reportdata);
    expect(r.debug).toBe(false);
    expect(r.claims.quoteVersion).toBe(4);
    expect(r.claims.mrTd).toBe(e.parsed.td_body.mrtd);
    expect(r.claims.rtmr).toEqual([0, 1, 2, 3].map((i) => e.parsed.td_body[`rtmr${i}`]));
    expect(r.claims.pck?.fmspc).toBe(e.parsed.pck_fmspc);
    expect(r.claims.rootFingerprint).toBe("44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3");
    // allow-lists without values are skipped, never silently passed
    const judged = judge(r, {}, { at: QVL_TDX_AT });
    for (const name of ["policy.measurement", "policy.min_tcb", "policy.binding"]) {
      expect(status(judged, name)).toBe("skipped");
    }
    expect(judged.trusted).toBe(true);
    expect(JSON.parse(JSON.stringify(r.claims))).toEqual(r.claims);
  });

  it("is rejected once the collateral has expired (one second after the earliest nextUpdate)", () => {
    const later = new Date(e.collateral_check.collateral_window[1] * 1000 + 1000);
    const r = verifyTdxQuote(quote, { at: later, collateral: qvlTdxCollateral });
    expect(r.trusted).toBe(false);
    expect(failed(r)).toContain("pck-crl");
    expect(status(r, "quote-signature")).toBe("pass");
  });

  it("the validator applies the reference values, minimum TEE_TCB_SVN and the report-data binding", () => {
    const td = e.parsed.td_body;
    const r = verifyTdxQuote(quote, { at: QVL_TDX_AT, collateral: qvlTdxCollateral });
    const reference = {
      mrtd: td.mrtd.toUpperCase(),
      rtmr0: td.rtmr0,
      rtmr2: td.rtmr2,
      mrconfigid: td.mrconfigid,
      mrowner: td.mrowner,
    };
    const ok = judge(
      r,
      { tdx: { reference_values: [reference], min_tee_tcb_svn: td.tee_tcb_svn } },
      { at: QVL_TDX_AT, expectedReportData: Buffer.from(td.reportdata, "hex") },
    );
    expect(failed(ok)).toEqual([]);
    expect(ok.trusted).toBe(true);
    for (const name of ["policy.measurement", "policy.min_tcb", "policy.binding", "policy.tcb_status"]) {
      expect(status(ok, name)).toBe("pass");
    }

    const higherSvn = Buffer.from(td.tee_tcb_svn, "hex");
    higherSvn[2] += 1;
    const bad = judge(
      r,
      {
        tdx: {
          reference_values: [{ ...reference, rtmr1: "11".repeat(48) }, { mrtd: "00".repeat(48) }],
          min_tee_tcb_svn: hex(higherSvn),
        },
      },
      { at: QVL_TDX_AT, expectedReportData: new Uint8Array(64) },
    );
    expect(bad.trusted).toBe(false);
    expect(failed(bad)).toEqual(["policy.measurement", "policy.min_tcb", "policy.binding"]);
    expect(bad.checks.find((c) => c.name === "policy.min_tcb")?.detail).toMatch(/component\(s\) 2 below/);
  });

  it("rejects malformed options and collateral envelopes with ValidationError naming the field", () => {
    expect(() => verifyTdxQuote(quote, { at: new Date("x"), collateral: qvlTdxCollateral })).toThrow(
      /at: must be/,
    );
    const { pck_crl: _, ...missing } = qvlTdxCollateral;
    expect(() => verifyTdxQuote(quote, { at: QVL_TDX_AT, collateral: missing as DcapCollateral })).toThrow(
      /pck_crl/,
    );
    expect(() =>
      verifyTdxQuote(quote, {
        at: QVL_TDX_AT,
        collateral: { ...qvlTdxCollateral, tcb_info_signature: "zz" },
      }),
    ).toThrow(ValidationError);
  });

  it("refuses collateral for another TEE or another platform", () => {
    const sgxCollateral = verifyTdxQuote(quote, { at: QVL_TDX_AT, collateral: qvlSgxCollateral });
    expect(sgxCollateral.trusted).toBe(false);
    expect(failed(sgxCollateral)).toEqual(
      expect.arrayContaining(["tcb-info", "qe-identity", "tcb-info-platform"]),
    );
  });
});

describe("dcap-qvl SGX vector (full collateral)", () => {
  const quote = read("sgx/dcap-qvl_sgx_quote.bin");
  const e = sgxExpected.vectors[0];

  it("reports ConfigurationAndSWHardeningNeeded with its advisories and rejects it under the default policy", () => {
    const r = verifySgxQuote(quote, { at: QVL_SGX_AT, collateral: qvlSgxCollateral });
    expect(r.trusted).toBe(true);
    expect(status(r, "tcb-status")).toBe("pass");
    const judged = judge(r, {}, { at: QVL_SGX_AT });
    expect(judged.trusted).toBe(false);
    expect(failed(judged)).toEqual(["policy.tcb_status"]);
    expect(judged.checks.find((c) => c.name === "policy.tcb_status")?.detail).toMatch(
      /ConfigurationAndSWHardeningNeeded is not in accepted_tcb_statuses/,
    );
    expect(r.claims.tcbStatus).toBe("ConfigurationAndSWHardeningNeeded");
    expect(r.claims.advisoryIds).toEqual(e.collateral_check.platform_tcb_status[2]);
    expect(r.claims.tcbDate).toBe(e.collateral_check.platform_tcb_status[1]);
  });

  it("is trusted when the policy accepts that status", () => {
    const r = verifySgxQuote(quote, { at: QVL_SGX_AT, collateral: qvlSgxCollateral });
    const judged = judge(
      r,
      {
        accepted_tcb_statuses: ["UpToDate", "ConfigurationAndSWHardeningNeeded"],
        sgx: {
          reference_values: [
            {
              mrenclave: e.parsed.isv_report.mrenclave,
              mrsigner: e.parsed.isv_report.mrsigner,
              isv_prod_id: 0,
            },
          ],
          min_isv_svn: 0,
        },
      },
      { at: QVL_SGX_AT },
    );
    expect(failed(judged)).toEqual([]);
    expect(judged.trusted).toBe(true);
    expect(r.kind).toBe("sgx");
    expect(r.measurement).toBe(e.parsed.isv_report.mrenclave);
    expect(Buffer.from(r.reportData!.subarray(0, 13)).toString("latin1")).toBe(
      e.expected_outcome.isv_report_data_ascii,
    );
    expect(r.debug).toBe(false);
    expect(r.claims.mrSigner).toBe(e.parsed.isv_report.mrsigner);
    expect(r.claims.qeSvn).toBe(e.parsed.header.bytes8_9);
    expect(r.claims.pceSvn).toBe(e.parsed.header.bytes10_11);
  });

  it("fails the SGX reference values and minimum ISVSVN when they do not match", () => {
    const r = verifySgxQuote(quote, { at: QVL_SGX_AT, collateral: qvlSgxCollateral });
    const { mrenclave, mrsigner } = e.parsed.isv_report;
    const judged = judge(
      r,
      {
        accepted_tcb_statuses: ["ConfigurationAndSWHardeningNeeded"],
        sgx: {
          reference_values: [
            { mrenclave: "00".repeat(32), mrsigner },
            { mrenclave, mrsigner: "11".repeat(32) },
            { mrenclave, isv_prod_id: 1 },
          ],
          min_isv_svn: 1,
        },
      },
      { at: QVL_SGX_AT },
    );
    expect(failed(judged)).toEqual(["policy.measurement", "policy.min_isv_svn"]);
  });

  it("rejects a debug enclave unless allowed", () => {
    const debugQuote = new Uint8Array(quote);
    debugQuote[48 + 48] |= 0x02; // ATTRIBUTES.FLAGS.DEBUG (also breaks the signature, as it must)
    const r = verifySgxQuote(debugQuote, { at: QVL_SGX_AT, collateral: qvlSgxCollateral });
    expect(r.debug).toBe(true);
    const judged = judge(
      r,
      { accepted_tcb_statuses: ["ConfigurationAndSWHardeningNeeded"] },
      { at: QVL_SGX_AT },
    );
    expect(failed(judged)).toEqual(["quote-signature", "policy.debug"]);
  });
});

describe("go-tdx-guest TDX v4 (SPR E4) with its PCS collateral", () => {
  const raw = read("tdx/go-tdx-guest_tdx_prod_quote_SPR_E4.dat");
  const quote = raw.subarray(0, raw.length - 39); // see PROVENANCE note 1
  const collateral = goTdxCollateral();

  it("as shipped (with 39 appended unsigned bytes) gets go-tdx-guest's verdict, with a warning", () => {
    const r = verifyTdxQuote(raw, { at: GO_TDX_AT, collateral });
    for (const name of [...QUOTE_CHECKS, ...COLLATERAL_CHECKS, "tcb-info-platform", "tdx-module"]) {
      expect(status(r, name), name).toBe("pass");
    }
    expect(r.checks.find((c) => c.name === "trailing-bytes")).toMatchObject({ status: "warn" });
    expect(r.checks.find((c) => c.name === "trailing-bytes")!.detail).toMatch(/^39 unsigned byte/);
    expect(failed(r)).toEqual(["tcb-status"]);
    expect(status(verifyTdxQuote(quote, { at: GO_TDX_AT, collateral }), "trailing-bytes")).toBeUndefined();
  });

  it("verifies signatures, chain, CRLs and collateral, but no TCB level matches", () => {
    const r = verifyTdxQuote(quote, { at: GO_TDX_AT, collateral });
    for (const name of [...QUOTE_CHECKS, ...COLLATERAL_CHECKS, "tcb-info-platform", "tdx-module"]) {
      expect(status(r, name), name).toBe("pass");
    }
    expect(failed(r)).toEqual(["tcb-status"]);
    expect(r.checks.find((c) => c.name === "tcb-status")!.detail).toMatch(/no TCB level matches/);
    expect(r.claims.qeTcbStatus).toBe("UpToDate");
    expect(r.trusted).toBe(false);
  });

  it("fails the chain and collateral checks at 2053-07-01", () => {
    const r = verifyTdxQuote(quote, { at: new Date("2053-07-01T01:00:00Z"), collateral });
    expect(status(r, "pck-chain")).toBe("fail");
    expect(r.checks.find((c) => c.name === "pck-chain")!.detail).toMatch(/expired/);
    expect(status(r, "tcb-info")).toBe("fail");
    expect(r.checks.find((c) => c.name === "tcb-info")!.detail).toMatch(/expired/);
  });

  it.each([
    ["0x1343", "pck-chain"],
    ["0x1329", "pck-chain"],
    ["0xF5F", "pck-chain"],
    ["0xB77", "pck-chain"],
    ["0x1E", "quote-signature"],
    ["0x3C", "quote-signature"],
  ])("EXPECTED negative mutation at %s fails %s", (offset, check) => {
    const q = new Uint8Array(quote);
    q[Number(offset)] = 0x32;
    let r: ReturnType<typeof verifyTdxQuote> | undefined;
    try {
      r = verifyTdxQuote(q, { at: GO_TDX_AT, collateral });
    } catch (error) {
      // a changed PEM byte can also make the certificate text itself malformed
      expect(check).toBe("pck-chain");
      expect(error).toBeInstanceOf(EvidenceFormatError);
      return;
    }
    expect(status(r, check)).toBe("fail");
    expect(r.trusted).toBe(false);
  });
});

describe("trustee TDX v4 with DEBUG set", () => {
  const quote = read("tdx/trustee_tdx_quote_4.dat");

  it("passes every check except debug with the matching go-tdx-guest collateral", () => {
    const r = verifyTdxQuote(quote, { at: GO_TDX_AT, collateral: goTdxCollateral() });
    expect(r.debug).toBe(true);
    expect(failed(judge(r, {}, { at: GO_TDX_AT }))).toEqual(["policy.debug"]);
    expect(judge(r, {}, { at: GO_TDX_AT }).trusted).toBe(false);
    // hand-computed in PROVENANCE note 3: first level [5,5,2,2,3,1,0,3,...], pcesvn 11, tdx [3,0,5,...]
    expect(r.claims.tcbStatus).toBe("UpToDate");
    expect(r.claims.tcbDate).toBe("2023-02-15T00:00:00Z");
  });

  it("is trusted only when the policy allows debug TDs", () => {
    const r = verifyTdxQuote(quote, { at: GO_TDX_AT, collateral: goTdxCollateral() });
    expect(judge(r, { allow_debug: true }, { at: GO_TDX_AT }).trusted).toBe(true);
    expect(r.debug).toBe(true);
  });
});

describe("quotes without their own collateral", () => {
  // EXPECTED: quote signature, QE report signature and binding, and PCK chain valid. The dcap-qvl
  // collateral is for another FMSPC, so the platform checks must fail.
  it.each([
    ["trustee_tdx_quote_5.dat", "trustee-tdx-5"],
    ["trustee_tdx_quote_6.dat", "trustee-tdx-6"],
    ["go-tdx-guest_cos-113-tdx-quote.dat", undefined],
  ])("%s: quote checks pass, platform mismatch fails", (file, id) => {
    const r = verifyTdxQuote(read(`tdx/${file}`), { at: QVL_TDX_AT, collateral: qvlTdxCollateral });
    for (const name of QUOTE_CHECKS) expect(status(r, name), name).toBe("pass");
    expect(status(r, "tcb-info-platform")).toBe("fail");
    expect(r.trusted).toBe(false);
    if (id) expect(r.measurement).toBe(expectedTdx(id).parsed.td_body.mrtd);
    if (file.startsWith("go-tdx-guest_cos")) expect(r.claims.paddingBytes).toBe(3065);
  });

  it("trustee v5 reports the TD 1.5 fields", () => {
    const r = verifyTdxQuote(read("tdx/trustee_tdx_quote_5.dat"), {
      at: QVL_TDX_AT,
      collateral: qvlTdxCollateral,
    });
    const td = expectedTdx("trustee-tdx-5").parsed.td_body;
    expect(r.claims.quoteVersion).toBe(5);
    expect(r.claims.bodyType).toBe(3);
    expect(r.claims.tdReportVersion).toBe("1.5");
    expect(r.claims.teeTcbSvn2).toBe(td.tee_tcb_svn2);
    expect(r.claims.mrServiceTd).toBe(td.mrservicetd);
  });

  it("trustee v6 reports MRCONFIGID and matches it in an allow-list", () => {
    const td = expectedTdx("trustee-tdx-6").parsed.td_body;
    const r = verifyTdxQuote(read("tdx/trustee_tdx_quote_6.dat"), {
      at: QVL_TDX_AT,
      collateral: qvlTdxCollateral,
    });
    expect(r.claims.mrConfigId).toBe(td.mrconfigid);
    const policy = { tdx: { reference_values: [{ mrtd: td.mrtd, mrconfigid: td.mrconfigid }] } };
    expect(status(judge(r, policy, { at: QVL_TDX_AT }), "policy.measurement")).toBe("pass");
  });
});

describe("go-tdx-guest TDX v5 sample", () => {
  const quote = read("tdx/go-tdx-guest_quote_v5_sample.dat");
  const at = new Date("2026-02-03T01:00:00Z");

  it("quote checks pass; the expired TCB signing certificate and 2023 collateral fail", () => {
    const r = verifyTdxQuote(quote, {
      at,
      collateral: goTdxCollateral("go-tdx-guest_sample_tcbinfo_response_v5"),
    });
    for (const name of [...QUOTE_CHECKS, "tcb-info", "tcb-info-platform", "tdx-module"]) {
      expect(status(r, name), name).toBe("pass");
    }
    expect(r.checks.find((c) => c.name === "tcb-info-signature")!.detail).toMatch(/expired/);
    expect(failed(r)).toEqual(
      expect.arrayContaining([
        "pck-crl",
        "tcb-info-signature",
        "qe-identity-signature",
        "root-ca-crl",
        "qe-identity",
      ]),
    );
    expect(r.trusted).toBe(false);
  });
});

describe("quotes checked without any collateral", () => {
  const ALL_COLLATERAL = [...COLLATERAL_CHECKS, "tcb-info-platform", "tcb-status"];

  it("trustee TDX v4 (DEBUG set): every quote-only check runs, the debug TD is named, collateral checks fail for want of it", () => {
    const verified = verifyTdxQuote(read("tdx/trustee_tdx_quote_4.dat"), {
      at: new Date("2024-01-01T00:00:00Z"),
    });
    const r = judge(verified);
    for (const name of QUOTE_CHECKS) expect(status(r, name), name).toBe("pass");
    const debug = r.checks.find((c) => c.name === "policy.debug")!;
    expect(debug.status).toBe("fail");
    expect(debug.detail).toMatch(/TD_ATTRIBUTES\.DEBUG is set/);
    expect(r.checks.find((c) => c.name === "collateral")).toMatchObject({ status: "fail" });
    for (const name of [...ALL_COLLATERAL, "tdx-module"]) {
      const c = r.checks.find((x) => x.name === name)!;
      expect(c.status, name).toBe("fail");
      expect(c.detail, name).toMatch(/collateral/);
    }
    expect(status(r, "policy.binding")).toBe("skipped");
    expect(status(r, "policy.tcb_status")).toBe("fail");
    expect(verified.debug).toBe(true);
    expect(r.trusted).toBe(false);
  });

  it("dcap-qvl SGX: quote signature, QE report, binding and PCK chain pass; not trusted without collateral", () => {
    const r = judge(verifySgxQuote(read("sgx/dcap-qvl_sgx_quote.bin"), { at: QVL_SGX_AT }));
    for (const name of [...QUOTE_CHECKS, "policy.debug"]) expect(status(r, name), name).toBe("pass");
    for (const name of ALL_COLLATERAL) expect(status(r, name), name).toBe("fail");
    expect(r.trusted).toBe(false);
  });

  it("a report-data binding is checked without collateral too", () => {
    const quote = read("tdx/trustee_tdx_quote_5.dat");
    const td = expectedTdx("trustee-tdx-5").parsed.td_body;
    const r = verifyTdxQuote(quote, { at: QVL_TDX_AT });
    const expectedReportData = new Uint8Array(Buffer.from(td.reportdata, "hex"));
    expect(status(judge(r, {}, { expectedReportData }), "policy.binding")).toBe("pass");
    const bad = judge(r, {}, { expectedReportData: new Uint8Array(64) });
    expect(status(bad, "policy.binding")).toBe("fail");
  });

  it("a PCK chain that fails (validation time after the leaf expires) does not hide the QE report checks", () => {
    const r = verifyTdxQuote(read("tdx/trustee_tdx_quote_5.dat"), { at: new Date("2040-01-01T00:00:00Z") });
    expect(status(r, "pck-chain")).toBe("fail");
    for (const name of ["quote-signature", "pck-extensions", "qe-report-signature", "qe-report-data"]) {
      expect(status(r, name), name).toBe("pass");
    }
    expect(r.checks.find((c) => c.name === "qe-report-signature")!.detail).toMatch(/chain did not verify/);
    expect(r.trusted).toBe(false);
  });

  it("a flipped body byte fails the quote signature and still reports the other quote checks", () => {
    const quote = read("sgx/dcap-qvl_sgx_quote.bin");
    quote[48 + 64] ^= 1; // inside MRENCLAVE
    const r = verifySgxQuote(quote, { at: QVL_SGX_AT });
    expect(status(r, "quote-signature")).toBe("fail");
    for (const name of ["pck-chain", "qe-report-signature", "qe-report-data"]) {
      expect(status(r, name), name).toBe("pass");
    }
  });
});

describe("expired collateral does not hide the checks that read it", () => {
  it("dcap-qvl TDX a year later: TCB info and QE identity fail as expired, the QE match and the TCB status are still reported", () => {
    const r = verifyTdxQuote(read("tdx/dcap-qvl_tdx_quote.bin"), {
      at: new Date(QVL_TDX_AT.getTime() + 365 * 86400_000),
      collateral: qvlTdxCollateral,
    });
    const qe = r.checks.find((c) => c.name === "qe-identity")!;
    expect(qe.status).toBe("fail");
    expect(qe.detail).toMatch(/expired collateral/);
    expect(status(r, "tcb-info")).toBe("fail");
    expect(r.claims.qeTcbStatus).toBe("UpToDate");
    expect(status(r, "tcb-status")).toBe("pass");
    expect(r.trusted).toBe(false);
  });
});
