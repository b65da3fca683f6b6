import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../errors.js";
import { defaultTrustPolicy, loadTrustPolicy, parseTrustPolicy, parseTrustPolicyText } from "./load.js";

function issues(input: unknown): { path: string; rule: string }[] {
  try {
    parseTrustPolicy(input);
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return (e as ValidationError).issues;
  }
  throw new Error("expected a validation error");
}

describe("TrustPolicy contract", () => {
  it("defaults fail closed", () => {
    const p = defaultTrustPolicy();
    expect(p.allow_debug).toBe(false);
    expect(p.allow_simulated).toBe(false);
    expect(p.allow_insecure).toBe(false);
    expect(p.allowed_kinds).toEqual(["snp", "tdx", "sgx", "nitro", "nvidia"]);
    expect(p.accepted_tcb_statuses).toEqual(["UpToDate", "SWHardeningNeeded"]);
    expect(p.max_evidence_age_seconds).toBe(300);
    expect(p.reattest_interval_seconds).toBe(3600);
    expect(p.snp.reference_values).toEqual([]);
  });

  it.each([
    ["allowed_kinds.0", { allowed_kinds: ["sev"] }, /snp/],
    ["allowed_kinds", { allowed_kinds: ["snp", "snp"] }, /duplicates/],
    ["allowed_kinds", { allowed_kinds: [] }, /at least one/],
    ["accepted_tcb_statuses", { accepted_tcb_statuses: ["UpToDate", "Revoked"] }, /Revoked/],
    ["max_evidence_age_seconds", { max_evidence_age_seconds: -5 }, /> 0/],
    ["max_evidence_age_seconds", { max_evidence_age_seconds: 1e9 }, /604800/],
    ["allow_debug", { allow_debug: "yes" }, /boolean/],
    [
      "snp.reference_values.0.measurement",
      { snp: { reference_values: [{ measurement: "abcd" }] } },
      /48 bytes/,
    ],
    ["snp.min_tcb.microcode", { snp: { min_tcb: { microcode: 256 } } }, /<= 255/],
    ["tdx.reference_values.0.mrtd", { tdx: { reference_values: [{ rtmr0: "00".repeat(48) }] } }, /./],
    ["sgx.reference_values.0", { sgx: { reference_values: [{}] } }, /mrenclave or mrsigner/],
    [
      "nitro.reference_values.0.pcr1",
      { nitro: { reference_values: [{ pcr0: "00".repeat(48), pcr1: "zz" }] } },
      /hex/,
    ],
    [
      "nvidia.reference_measurements.999",
      { nvidia: { reference_measurements: { "999": ["00"] } } },
      /indices/,
    ],
    ["", { surprise: 1 }, /unknown field/],
  ])("names the field %s and the rule", (field, input, rule) => {
    const found = issues(input).find((i) => i.path === field);
    expect(found, JSON.stringify(issues(input))).toBeDefined();
    expect(found!.rule).toMatch(rule);
  });

  it("normalises hex to lower case and never echoes values in errors", () => {
    const p = parseTrustPolicy({ nitro: { reference_values: [{ pcr0: "AB".repeat(48) }] } });
    expect(p.nitro.reference_values[0].pcr0).toBe("ab".repeat(48));
    const secret = "SECRET-VALUE-123";
    const msg = (() => {
      try {
        parseTrustPolicy({ snp: { reference_values: [{ measurement: secret }] } });
      } catch (e) {
        return (e as Error).message;
      }
      return "";
    })();
    expect(msg).toMatch(/snp\.reference_values\.0\.measurement/);
    expect(msg).not.toContain(secret);
  });

  it("loads YAML and JSON files; refuses duplicate keys and non-mappings", async () => {
    const dir = mkdtempSync(join(tmpdir(), "policy-"));
    writeFileSync(
      join(dir, "p.yaml"),
      "allow_simulated: true\nmax_evidence_age_seconds: 60\nsnp:\n  min_tcb: { snp: 8 }\n",
    );
    const y = await loadTrustPolicy(join(dir, "p.yaml"));
    expect(y.allow_simulated).toBe(true);
    expect(y.snp.min_tcb).toEqual({ bootloader: 0, tee: 0, snp: 8, microcode: 0, fmc: 0 });
    writeFileSync(join(dir, "p.json"), JSON.stringify({ allowed_kinds: ["tdx"] }));
    expect((await loadTrustPolicy(join(dir, "p.json"))).allowed_kinds).toEqual(["tdx"]);
    expect(() => parseTrustPolicyText('{"allow_debug": false, "allow_debug": true}')).toThrow(
      /not valid JSON or YAML/,
    );
    expect(() => parseTrustPolicyText("- a\n- b\n")).toThrow(/mapping/);
    expect(() => parseTrustPolicyText("? [a, b]\n: 1\n")).toThrow(/keys must be strings/);
    expect(() => parseTrustPolicyText('{"__proto__": {"allow_debug": true}}')).toThrow(/unknown field/);
    // Unquoted numeric keys (SPDM indices) are read as their text.
    const n = parseTrustPolicyText("nvidia:\n  reference_measurements:\n    2: [AA]\n");
    expect(n.nvidia.reference_measurements).toEqual({ "2": ["aa"] });
    await expect(loadTrustPolicy(join(dir, "missing.yaml"))).rejects.toMatchObject({
      code: "POLICY_UNREADABLE",
    });
  });
});
