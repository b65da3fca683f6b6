import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseCertificate } from "../pki/index.js";
import { rawJsonMember } from "./raw-json.js";
import { parsePckExtensions, type PckExtensions } from "./pck-extensions.js";
import { parseQeIdentity, parseTcbInfo, type TcbInfo } from "./pcs-documents.js";
import { parseTdxQuote } from "./quote.js";
import { checkTdxModuleIdentity, evaluatePlatformTcb, evaluateQeIdentity } from "./tcb-status.js";

const VECTORS = fileURLToPath(new URL("../../../test/vectors/", import.meta.url));
const text = (path: string) => readFileSync(VECTORS + path, "utf8");

/** A TDX TCB info document with the given levels (highest first), as Intel would publish it. */
function tdxInfo(
  levels: Array<{ sgx: number[]; pce: number; tdx: number[]; status: string; advisories?: string[] }>,
  modules: Array<{ id: string; levels: Array<[number, string]> }> = [],
): TcbInfo {
  const comp = (svns: number[]) => Array.from({ length: 16 }, (_, i) => ({ svn: svns[i] ?? 0 }));
  return parseTcbInfo(
    JSON.stringify({
      id: "TDX",
      version: 3,
      issueDate: "2025-01-01T00:00:00Z",
      nextUpdate: "2025-02-01T00:00:00Z",
      fmspc: "00806F050000",
      pceId: "0000",
      tcbType: 0,
      tcbEvaluationDataNumber: 17,
      tdxModule: { mrsigner: "00".repeat(48), attributes: "00".repeat(8), attributesMask: "FF".repeat(8) },
      tdxModuleIdentities: modules.map((m) => ({
        id: m.id,
        mrsigner: "00".repeat(48),
        attributes: "00".repeat(8),
        attributesMask: "FF".repeat(8),
        tcbLevels: m.levels.map(([isvsvn, tcbStatus]) => ({
          tcb: { isvsvn },
          tcbDate: "2024-01-01T00:00:00Z",
          tcbStatus,
        })),
      })),
      tcbLevels: levels.map((l, i) => ({
        tcb: { sgxtcbcomponents: comp(l.sgx), pcesvn: l.pce, tdxtcbcomponents: comp(l.tdx) },
        tcbDate: `202${4 - i}-01-01T00:00:00Z`,
        tcbStatus: l.status,
        ...(l.advisories ? { advisoryIDs: l.advisories } : {}),
      })),
    }),
  );
}

const pck = (components: number[], pceSvn: number): PckExtensions => ({
  ppid: new Uint8Array(16),
  tcbComponents: Array.from({ length: 16 }, (_, i) => components[i] ?? 0),
  pceSvn,
  cpuSvn: new Uint8Array(16),
  pceId: new Uint8Array(2),
  fmspc: new Uint8Array(6),
  sgxType: 1,
});
const svn16 = (bytes: number[]) => Uint8Array.from({ length: 16 }, (_, i) => bytes[i] ?? 0);

describe("evaluatePlatformTcb (hand-computed cases)", () => {
  const info = tdxInfo(
    [
      { sgx: [5, 5, 2], pce: 11, tdx: [3, 0, 5], status: "UpToDate" },
      { sgx: [5, 5, 2], pce: 11, tdx: [2, 0, 3], status: "OutOfDate", advisories: ["INTEL-SA-1"] },
      { sgx: [4, 4, 2], pce: 10, tdx: [0, 0, 0], status: "ConfigurationNeeded", advisories: ["INTEL-SA-2"] },
    ],
    [
      {
        id: "TDX_01",
        levels: [
          [6, "UpToDate"],
          [4, "OutOfDate"],
        ],
      },
    ],
  );

  it("picks the first level the SGX TCB and TEE_TCB_SVN both meet", () => {
    const r = evaluatePlatformTcb(info, pck([5, 5, 2], 11), "UpToDate", { teeTcbSvn: svn16([3, 0, 5]) });
    expect(r).toMatchObject({
      ok: true,
      status: "UpToDate",
      tcbDate: "2024-01-01T00:00:00Z",
      advisoryIds: [],
    });
    const lowerTdx = evaluatePlatformTcb(info, pck([5, 5, 2], 11), "UpToDate", {
      teeTcbSvn: svn16([3, 0, 4]),
    });
    expect(lowerTdx).toMatchObject({ ok: true, status: "OutOfDate", advisoryIds: ["INTEL-SA-1"] });
  });

  it("a lower PCESVN or any lower SGX component drops to a lower level", () => {
    const lowPce = evaluatePlatformTcb(info, pck([5, 5, 2], 10), "UpToDate", { teeTcbSvn: svn16([3, 0, 5]) });
    expect(lowPce).toMatchObject({ ok: true, status: "ConfigurationNeeded" });
    const lowComp = evaluatePlatformTcb(info, pck([5, 4, 9], 11), "UpToDate", {
      teeTcbSvn: svn16([3, 0, 5]),
    });
    expect(lowComp).toMatchObject({ ok: true, status: "ConfigurationNeeded" });
    const none = evaluatePlatformTcb(info, pck([3, 9, 9], 20), "UpToDate", { teeTcbSvn: svn16([9, 0, 9]) });
    expect(none).toMatchObject({ ok: false });
  });

  it("SGX-only evaluation ignores TDX components", () => {
    expect(evaluatePlatformTcb(info, pck([5, 5, 2], 11), "UpToDate")).toMatchObject({ status: "UpToDate" });
  });

  it("converges with an out-of-date or revoked QE", () => {
    const tdx = { teeTcbSvn: svn16([3, 0, 5]) };
    expect(evaluatePlatformTcb(info, pck([5, 5, 2], 11), "OutOfDate", tdx)).toMatchObject({
      status: "OutOfDate",
    });
    expect(evaluatePlatformTcb(info, pck([4, 4, 2], 10), "OutOfDate", tdx)).toMatchObject({
      status: "OutOfDateConfigurationNeeded",
    });
    expect(evaluatePlatformTcb(info, pck([5, 5, 2], 11), "Revoked", tdx)).toMatchObject({
      status: "Revoked",
    });
  });

  it("with a versioned TDX module judges bytes 0..1 by the module identity", () => {
    // Level TDX components [9, 9, 5]; TEE_TCB_SVN [7, 1, 5] is below them in bytes 0..1, but those belong to
    // module TDX_01 (SVN 7 >= 6, UpToDate), so only byte 2 (5 >= 5) is compared with the level.
    const skip01 = tdxInfo(
      [{ sgx: [5, 5, 2], pce: 11, tdx: [9, 9, 5], status: "UpToDate" }],
      [{ id: "TDX_01", levels: [[6, "UpToDate"]] }],
    );
    const up = evaluatePlatformTcb(skip01, pck([5, 5, 2], 11), "UpToDate", { teeTcbSvn: svn16([7, 1, 5]) });
    expect(up).toMatchObject({ ok: true, status: "UpToDate" });
    // With module version 0 every byte is compared, so [7, 0, 5] meets no level.
    const v0 = evaluatePlatformTcb(skip01, pck([5, 5, 2], 11), "UpToDate", { teeTcbSvn: svn16([7, 0, 5]) });
    expect(v0).toMatchObject({ ok: false });
    // Module SVN 5: TDX_01 level 4 is OutOfDate; converged with an UpToDate platform level -> OutOfDate.
    const stale = evaluatePlatformTcb(info, pck([5, 5, 2], 11), "UpToDate", { teeTcbSvn: svn16([5, 1, 5]) });
    expect(stale).toMatchObject({ ok: true, status: "OutOfDate" });
    // Module SVN 2 is below every TDX_01 level; version 2 has no identity at all.
    expect(
      evaluatePlatformTcb(info, pck([5, 5, 2], 11), "UpToDate", { teeTcbSvn: svn16([2, 1, 5]) }),
    ).toMatchObject({
      ok: false,
    });
    expect(
      evaluatePlatformTcb(info, pck([5, 5, 2], 11), "UpToDate", { teeTcbSvn: svn16([9, 2, 5]) }),
    ).toMatchObject({
      ok: false,
    });
  });

  it("advises a TD relaunch when only the launch-time module was out of date (TD 1.5)", () => {
    const tdx = { teeTcbSvn: svn16([5, 1, 5]), teeTcbSvn2: svn16([6, 1, 5]) };
    expect(evaluatePlatformTcb(info, pck([5, 5, 2], 11), "UpToDate", tdx)).toMatchObject({
      status: "TDRelaunchAdvised",
    });
    const notYet = { teeTcbSvn: svn16([5, 1, 5]), teeTcbSvn2: svn16([5, 1, 5]) };
    expect(evaluatePlatformTcb(info, pck([5, 5, 2], 11), "UpToDate", notYet)).toMatchObject({
      status: "OutOfDate",
    });
  });

  it("fails closed on an unrecognised status string", () => {
    const odd = tdxInfo([{ sgx: [1], pce: 1, tdx: [1], status: "Sideways" }]);
    expect(evaluatePlatformTcb(odd, pck([1], 1), "UpToDate", { teeTcbSvn: svn16([1]) })).toMatchObject({
      ok: false,
    });
  });
});

describe("go-tdx-guest v5 sample TCB logic (EXPECTED tcb_status_recomputed)", () => {
  it("is UpToDate via TDX module identity TDX_01", () => {
    const quote = parseTdxQuote(
      new Uint8Array(readFileSync(VECTORS + "tdx/go-tdx-guest_quote_v5_sample.dat")),
    );
    const info = parseTcbInfo(
      rawJsonMember(text("tdx/go-tdx-guest_sample_tcbinfo_response_v5"), "tcbInfo", "t"),
    );
    const ext = parsePckExtensions(parseCertificate(quote.pckChain[0]));
    const r = evaluatePlatformTcb(info, ext, "UpToDate", {
      teeTcbSvn: quote.body.teeTcbSvn,
      teeTcbSvn2: quote.body.teeTcbSvn2,
    });
    expect(r).toMatchObject({ ok: true, status: "UpToDate", tcbDate: "2024-11-13T00:00:00Z" });
    expect(checkTdxModuleIdentity(info, quote.body)).toMatchObject({ ok: true });
  });
});

describe("evaluateQeIdentity", () => {
  const identity = parseQeIdentity(
    rawJsonMember(text("tdx/go-tdx-guest_sample_qeIdentity_response"), "enclaveIdentity", "q"),
  );
  const qe = parseTdxQuote(new Uint8Array(readFileSync(VECTORS + "tdx/trustee_tdx_quote_4.dat"))).qeReport;

  it("matches Intel's TD_QE identity (MRSIGNER dc9e2a7c..., ISVPRODID 2, ISVSVN 4 -> UpToDate)", () => {
    expect(evaluateQeIdentity(identity, qe)).toMatchObject({ ok: true, status: "UpToDate" });
  });

  it("rejects a different MRSIGNER, ISVPRODID or masked ATTRIBUTES, and an ISVSVN below every level", () => {
    const mutate = (f: (r: typeof qe) => void) => {
      const copy = {
        ...qe,
        mrSigner: new Uint8Array(qe.mrSigner),
        attributes: new Uint8Array(qe.attributes),
      };
      f(copy);
      return evaluateQeIdentity(identity, copy);
    };
    expect(mutate((r) => (r.mrSigner[0] ^= 1))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/MRSIGNER/),
    });
    expect(mutate((r) => (r.isvProdId = 1))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/ISVPRODID/),
    });
    // attributesMask FBFF...: bit 1 of byte 0 (DEBUG) is compared, bit 2 of byte 0 is not
    expect(mutate((r) => (r.attributes[0] |= 0x02))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/ATTRIBUTES/),
    });
    expect(mutate((r) => (r.attributes[0] ^= 0x04))).toMatchObject({ ok: true });
    expect(mutate((r) => (r.isvSvn = 3))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/ISVSVN/),
    });
  });
});
