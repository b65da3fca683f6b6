import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { cli } from "../../../test/support/cli.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const V = (p: string) => join(ROOT, "test/vectors", p);

/** Run the CLI in-process, capturing stdout/stderr. */

afterEach(() => {
  process.exitCode = undefined;
});

interface JsonOut {
  trusted: boolean;
  kind: string;
  checks: { name: string; status: string; detail: string }[];
  claims: Record<string, unknown>;
  report: Record<string, string>;
}

describe("enclave verify", () => {
  it("verifies a real SNP report with its VCEK: exit 0, every check listed", async () => {
    const r = await cli(
      "verify",
      V("sev-snp/trustee_test-report.bin"),
      "--cert",
      V("sev-snp/trustee_test-vcek.der"),
      "--at",
      "2025-01-01T00:00:00Z",
    );
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/verdict: +TRUSTED/);
    expect(r.out).toMatch(/PASS {2}report-signature: /);
    expect(r.out).toMatch(/SKIP {2}policy\.measurement: no reference values/);
    expect(r.out).toMatch(/hardware_type: AMD_SEV_SNP/);
  });

  it("rejects the debug SNP report (exit 1) and accepts it under a policy allowing debug", async () => {
    const args = [
      "verify",
      V("sev-snp/go-sev-guest_attestation.bin"),
      "--cert",
      V("sev-snp/go-sev-guest_vcek.testcer"),
      "--at",
      "2025-01-01T00:00:00Z",
      "--json",
    ];
    const r = await cli(...args);
    expect(r.code).toBe(1);
    const j = JSON.parse(r.out) as JsonOut;
    expect(j.trusted).toBe(false);
    expect(j.checks.find((c) => c.name === "policy.debug")).toMatchObject({ status: "fail" });
    const dir = mkdtempSync(join(tmpdir(), "verify-"));
    writeFileSync(join(dir, "p.yaml"), "allow_debug: true\n");
    const ok = await cli(...args, "--policy", join(dir, "p.yaml"));
    expect(ok.code).toBe(0);
  });

  it("prints the --json shape for TDX with Intel collateral", async () => {
    const r = await cli(
      "verify",
      V("tdx/dcap-qvl_tdx_quote.bin"),
      "--collateral",
      V("tdx/dcap-qvl_tdx_quote_collateral.json"),
      "--at",
      "2025-07-19T10:00:34Z",
      "--json",
    );
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out) as JsonOut;
    expect(Object.keys(j)).toEqual(["trusted", "kind", "checks", "claims", "report"]);
    expect(j.kind).toBe("tdx");
    expect(j.claims.tcbStatus).toBe("UpToDate");
    for (const c of j.checks) expect(Object.keys(c)).toEqual(["name", "status", "detail"]);
    expect(j.report.status).toBe("TRUSTED");
  });

  it("SGX with collateral: not trusted under the default TCB statuses (exit 1)", async () => {
    const r = await cli(
      "verify",
      V("sgx/dcap-qvl_sgx_quote.bin"),
      "--kind",
      "sgx",
      "--collateral",
      V("sgx/dcap-qvl_sgx_quote_collateral.json"),
      "--at",
      "2025-07-19T10:01:17Z",
      "--json",
    );
    expect(r.code).toBe(1);
    const j = JSON.parse(r.out) as JsonOut;
    expect(j.checks.find((c) => c.name === "policy.tcb_status")?.detail).toMatch(
      /ConfigurationAndSWHardeningNeeded/,
    );
  });

  it("verifies Nitro from its base64 text and NVIDIA from hex text with a PEM chain", async () => {
    const dir = mkdtempSync(join(tmpdir(), "verify-"));
    const b64 = join(dir, "nitro.b64");
    writeFileSync(
      b64,
      readFileSync(V("nitro/blocky-nitrite_nitro_attestation.cbor")).toString("base64") + "\n",
    );
    const n = await cli("verify", b64, "--at", "2024-09-07T14:37:40Z", "--json");
    expect(n.code, n.out).toBe(0);
    expect((JSON.parse(n.out) as JsonOut).report.hardware_type).toBe("AWS_NITRO");
    const g = await cli(
      "verify",
      V("nvidia-gpu/trustee_hopperAttestationReport.txt"),
      "--cert",
      V("nvidia-gpu/trustee_hopper_cert_chain_case1.txt"),
      "--at",
      "2025-01-01T00:00:00Z",
    );
    expect(g.code, g.out).toBe(0);
    expect(g.out).toMatch(/SKIP {2}revocation: OCSP/);
    const bad = await cli(
      "verify",
      V("nvidia-gpu/trustee_hopperAttestationReport.txt"),
      "--cert",
      V("nvidia-gpu/trustee_hopper_cert_chain_case3.txt"),
      "--at",
      "2025-01-01T00:00:00Z",
    );
    expect(bad.code).toBe(1);
  });

  it("checks a nonce binding when given the expected report data", async () => {
    const rd = "ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e2" + "00".repeat(32);
    const base = [
      "verify",
      V("sev-snp/trustee_test-report.bin"),
      "--cert",
      V("sev-snp/trustee_test-vcek.der"),
      "--at",
      "2025-01-01T00:00:00Z",
    ];
    expect((await cli(...base, "--report-data", rd)).out).toMatch(/PASS {2}policy\.binding/);
    const wrong = await cli(...base, "--report-data", "11".repeat(64));
    expect(wrong.code).toBe(1);
    expect(wrong.out).toMatch(/FAIL {2}policy\.binding: REPORT_DATA does not equal/);
  });

  it("reports bad input with a typed error and a non-zero exit", async () => {
    const dir = mkdtempSync(join(tmpdir(), "verify-"));
    writeFileSync(join(dir, "junk.bin"), Buffer.alloc(300, 0x41));
    const r = await cli("verify", join(dir, "junk.bin"));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/\[EVIDENCE_UNRECOGNISED\]/);
    expect((await cli("verify", join(dir, "missing.bin"))).err).toMatch(
      /\[INPUT_UNREADABLE\]: evidence file cannot be read \(ENOENT\)/,
    );
    expect((await cli("verify", V("sev-snp/trustee_test-report.bin"), "--at", "yesterday")).err).toMatch(
      /at: must be an ISO 8601/,
    );
    expect((await cli("verify", V("sev-snp/trustee_test-report.bin"), "--kind", "tpm")).err).toMatch(
      /kind: must be one of/,
    );
    writeFileSync(join(dir, "bad.yaml"), "allow_debug: maybe\n");
    const p = await cli("verify", V("sev-snp/trustee_test-report.bin"), "--policy", join(dir, "bad.yaml"));
    expect(p.err).toMatch(/\[VALIDATION_FAILED\]: invalid trust policy: allow_debug: /);
    const trunc = join(dir, "trunc.bin");
    writeFileSync(trunc, Buffer.alloc(1000));
    const t = await cli("verify", trunc, "--kind", "snp", "--json");
    expect(t.code).toBe(1);
    expect((JSON.parse(t.out) as JsonOut).checks[0]).toMatchObject({ name: "format", status: "fail" });
  });
});

describe("enclave attest", () => {
  it("refuses without TEE hardware, explaining the options (this machine has no TEE)", async () => {
    const r = await cli("attest");
    // On a TEE machine this would collect; the test machine has none.
    if (r.code === 0) return;
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/\[(NO_TEE|TEE_UNSUPPORTED)\]/);
    expect(r.err).toMatch(/pass --simulation for a local simulation or --insecure/);
  });

  it("writes simulated evidence that verify accepts only under a policy allowing simulation", async () => {
    const dir = mkdtempSync(join(tmpdir(), "attest-"));
    const out = join(dir, "ev.bin");
    const nonce = "ab".repeat(32);
    const a = await cli("attest", "--simulation", "--nonce", nonce, "--out", out);
    if (!/SIMULATED/.test(a.out)) return; // hardware present: covered by the provider tests
    expect(a.code, a.err).toBe(0);
    const key = /public key: +([0-9a-f]+)/.exec(a.out)![1];
    const v = await cli("verify", out, "--nonce", nonce, "--public-key", key, "--json");
    expect(v.code).toBe(1);
    const j = JSON.parse(v.out) as JsonOut;
    expect(j.kind).toBe("simulated");
    expect(j.checks.find((c) => c.name === "policy.kind")?.detail).toMatch(/allow_simulated: false/);
    expect(j.checks.find((c) => c.name === "policy.binding")?.status).toBe("pass");
    writeFileSync(join(dir, "dev.json"), JSON.stringify({ allow_simulated: true }));
    const ok = await cli(
      "verify",
      out,
      "--nonce",
      nonce,
      "--public-key",
      key,
      "--policy",
      join(dir, "dev.json"),
    );
    expect(ok.code, ok.out).toBe(0);
    const other = await cli(
      "verify",
      out,
      "--nonce",
      "cd".repeat(32),
      "--public-key",
      key,
      "--policy",
      join(dir, "dev.json"),
    );
    expect(other.code).toBe(1);
  });

  it("prints JSON with base64 evidence when --out is omitted", async () => {
    const r = await cli("attest", "--insecure");
    if (!/INSECURE/.test(r.out)) return;
    const j = JSON.parse(r.out);
    expect(j.label).toBe("INSECURE");
    expect(Buffer.from(j.evidence_base64, "base64").subarray(0, 8).toString()).toBe("CRSN-EVD");
    expect((await cli("attest", "--insecure", "--nonce", "00")).err).toMatch(
      /nonce: must be 32 bytes of hex/,
    );
  });
});

describe("the built CLI (dist)", () => {
  const main = join(ROOT, "dist/cli/main.js");
  it.skipIf(!existsSync(main))("runs `node dist/cli/main.js verify` on a real Nitro document", () => {
    const r = spawnSync(
      process.execPath,
      [
        main,
        "verify",
        V("nitro/blocky-nitrite_nitro_attestation.cbor"),
        "--at",
        "2024-09-07T14:37:40Z",
        "--json",
      ],
      { encoding: "utf8" },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).trusted).toBe(true);
    const late = spawnSync(
      process.execPath,
      [main, "verify", V("nitro/blocky-nitrite_nitro_attestation.cbor"), "--at", "2024-09-08T14:37:40Z"],
      { encoding: "utf8" },
    );
    expect(late.status).toBe(1);
    expect(late.stdout).toMatch(/NOT TRUSTED/);
  });
});
