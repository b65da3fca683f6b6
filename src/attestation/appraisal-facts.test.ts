import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { appraisalFacts } from "./appraisal-facts.js";
import { appraiseEvidence } from "./appraise.js";
import { pemToDerList } from "./pki/index.js";
import { InsecureProvider } from "./providers/software.js";

const VECTORS = fileURLToPath(new URL("../../test/vectors/", import.meta.url));
const bin = (p: string) => new Uint8Array(readFileSync(join(VECTORS, p)));
const json = (p: string) => JSON.parse(readFileSync(join(VECTORS, p), "utf8"));
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const vector = (tee: string, file: string): Record<string, any> =>
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  (json(`${tee}/EXPECTED.json`).vectors as Record<string, any>[]).find((v) => v.file === file)!;

describe("appraisalFacts", () => {
  it("gives an SNP report's reported TCB as EXPECTED.json reads it, and the debug check that fails it", async () => {
    const a = await appraiseEvidence(bin("sev-snp/go-sev-guest_attestation.bin"), {
      at: new Date("2024-01-01T00:00:00Z"),
      certificates: [
        bin("sev-snp/go-sev-guest_vcek.testcer"),
        ...pemToDerList(readFileSync(join(VECTORS, "sev-snp/go-sev-guest_ask_ark_milan.pem"), "utf8")),
      ],
      requireFreshness: false,
    });
    const e = vector("sev-snp", "go-sev-guest_attestation.bin").expected;
    const t = e.reported_tcb;
    expect(appraisalFacts(a.result).tcb).toBe(
      `bootloader=${t.bl},tee=${t.tee},snp=${t.snp},microcode=${t.ucode},guest_svn=${e.guest_svn}`,
    );
    // the vector's guest policy allows debugging (policy_bits.debug), which the default policy refuses
    expect(e.policy_bits.debug).toBe(true);
    expect(a.trusted).toBe(false);
    expect(appraisalFacts(a.result).failed_check).toBe(
      a.result.checks.find((c) => c.status === "fail")!.name,
    );
  });

  it("gives a TDX quote's TEE_TCB_SVN and Intel's TCB status as dcap-qvl reports them", async () => {
    const a = await appraiseEvidence(bin("tdx/dcap-qvl_tdx_quote.bin"), {
      at: new Date("2025-07-19T10:00:34Z"),
      collateral: json("tdx/dcap-qvl_tdx_quote_collateral.json"),
      requireFreshness: false,
    });
    const v = vector("tdx", "dcap-qvl_tdx_quote.bin");
    const f = appraisalFacts(a.result);
    expect(f.tcb).toContain(`tee_tcb_svn=${v.parsed.td_body.tee_tcb_svn}`);
    expect(f.tcb_status).toBe(v.collateral_check.platform_tcb_status[0]);
  });

  it("names policy.kind for insecure evidence and gives no TCB for software evidence", async () => {
    const ev = await new InsecureProvider().collect(new Uint8Array(64));
    const a = await appraiseEvidence(ev, {});
    expect(a.trusted).toBe(false);
    expect(appraisalFacts(a.result)).toEqual({ failed_check: "policy.kind" });
  });
});
