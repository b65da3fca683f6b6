import { describe, expect, it } from "vitest";
import type { CheckResult } from "../checks.js";
import type {
  NitroVerification,
  NvidiaVerification,
  SgxVerification,
  SnpVerification,
  TdxVerification,
  VerificationResult,
} from "../types.js";
import { parseTrustPolicy } from "./load.js";
import { validateEvidence } from "./validate.js";

/** A verification with only the claims a test names (the validator reads nothing else). */
function verified<V extends VerificationResult>(
  kind: V["kind"],
  claims: Partial<V["claims"]>,
  debug = false,
): V {
  return { kind, trusted: true, checks: [], claims, measurement: "", debug } as unknown as V;
}
const at = new Date("2026-01-01T00:10:00Z");
const run = (v: VerificationResult, policy: object, extra: object = {}) =>
  validateEvidence(v.kind, v, parseTrustPolicy(policy), { at, requireFreshness: false, ...extra });
const find = (checks: CheckResult[], name: string) => checks.find((c) => c.name === name)!;

describe("validateEvidence: the trust policy on typed claims", () => {
  it("ages evidence by its signed time, else by its nonce's issue time", () => {
    const p = { max_evidence_age_seconds: 300 };
    const nitro = (iso: string) =>
      verified<NitroVerification>("nitro", { timestampMs: Date.parse(iso), pcrs: {} });
    expect(find(run(nitro("2026-01-01T00:06:00Z"), p), "policy.age").status).toBe("pass");
    expect(find(run(nitro("2026-01-01T00:04:59Z"), p), "policy.age").status).toBe("fail");
    expect(find(run(nitro("2026-01-01T00:20:00Z"), p), "policy.age").detail).toMatch(/future/);
    const snp = verified<SnpVerification>("snp", {
      reportedTcb: { raw: "0x0", bootloader: 0, tee: 0, snp: 0, microcode: 0 },
    });
    expect(find(run(snp, p), "policy.age").status).toBe("skipped");
  });

  it("matches reference tuples field by field, and names the fields the evidence lacks", () => {
    const mrtd = "aa".repeat(48);
    const rtmr0 = "bb".repeat(48);
    const p = { tdx: { reference_values: [{ mrtd, rtmr0 }] } };
    const tdx = (r0: string) =>
      verified<TdxVerification>("tdx", { mrTd: mrtd, rtmr: [r0, "", "", ""], teeTcbSvn: "00".repeat(16) });
    expect(find(run(tdx(rtmr0), p), "policy.measurement").status).toBe("pass");
    expect(find(run(tdx("cc".repeat(48)), p), "policy.measurement").status).toBe("fail");
    const pcr0 = "11".repeat(48);
    const nitro = verified<NitroVerification>("nitro", { timestampMs: at.getTime(), pcrs: { "0": pcr0 } });
    const lacks = find(
      run(nitro, { nitro: { reference_values: [{ pcr0, pcr3: pcr0 }] } }),
      "policy.measurement",
    );
    expect(lacks).toMatchObject({ status: "fail" });
    expect(lacks.detail).toMatch(/lacks pcr3/);
  });

  it("compares NVIDIA measurement indices against their allowed values", () => {
    const p = { nvidia: { reference_measurements: { "2": ["AA", "bb"] } } };
    const gpu = (m: Record<string, string>) => verified<NvidiaVerification>("nvidia", { measurements: m });
    expect(find(run(gpu({ "2": "bb" }), p), "policy.measurement").status).toBe("pass");
    expect(find(run(gpu({ "2": "aa" }), p), "policy.measurement").status).toBe("pass");
    expect(find(run(gpu({ "3": "aa" }), p), "policy.measurement").status).toBe("fail");
  });

  it("checks SNP guest SVN and VMPL (a host-requested report never passes), and SGX/TDX TCB status", () => {
    const tcb = { raw: "0x0", bootloader: 0, tee: 0, snp: 0, microcode: 0 };
    const snp = (vmpl: number) => verified<SnpVerification>("snp", { guestSvn: 4, vmpl, reportedTcb: tcb });
    const checks = run(snp(1), { snp: { min_guest_svn: 5, allowed_vmpls: [0] } });
    expect(find(checks, "policy.min_guest_svn").status).toBe("fail");
    expect(find(checks, "policy.vmpl").status).toBe("fail");
    expect(find(run(snp(3), {}), "policy.vmpl").status).toBe("pass");
    expect(find(run(snp(0xffffffff), {}), "policy.vmpl").detail).toMatch(/requested by the host/);
    const sgx = verified<SgxVerification>("sgx", { isvSvn: 1 });
    expect(find(run(sgx, {}), "policy.tcb_status").status).toBe("fail");
    const tdx = (tcbStatus: "OutOfDate" | "SWHardeningNeeded") =>
      verified<TdxVerification>("tdx", { tcbStatus, rtmr: [], teeTcbSvn: "00".repeat(16) });
    expect(find(run(tdx("OutOfDate"), {}), "policy.tcb_status").status).toBe("fail");
    expect(find(run(tdx("SWHardeningNeeded"), {}), "policy.tcb_status").status).toBe("pass");
  });

  it("each policy check appears once, under one name, for every kind", () => {
    const tcb = { raw: "0x0", bootloader: 0, tee: 0, snp: 0, microcode: 0 };
    const kinds: VerificationResult[] = [
      verified<SnpVerification>("snp", { vmpl: 0, guestSvn: 0, reportedTcb: tcb }, true),
      verified<TdxVerification>("tdx", { rtmr: [], teeTcbSvn: "00".repeat(16) }, true),
      verified<SgxVerification>("sgx", { isvSvn: 0 }, true),
      verified<NitroVerification>("nitro", { timestampMs: at.getTime(), pcrs: {} }, true),
      verified<NvidiaVerification>("nvidia", { measurements: {} }),
    ];
    for (const v of kinds) {
      const names = run(v, {}).map((c) => c.name);
      expect(new Set(names).size, v.kind).toBe(names.length);
      expect(
        names.every((n) => n.startsWith("policy.")),
        v.kind,
      ).toBe(true);
      const debug = find(run(v, {}), "policy.debug");
      expect(debug.status, v.kind).toBe(v.kind === "nvidia" ? "skipped" : "fail");
    }
  });
});
