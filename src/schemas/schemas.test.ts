import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../errors.js";
import { AttestationReport, FederationJob, PrivacyConfig, jsonSchemas, parseContract } from "./index.js";

const validJob = {
  job_id: "3f1c2b9e-8a4d-4c1e-9b7a-2d5e6f708192",
  clients: ["hospital-a", "hospital-b", "lab-c"],
  min_clients: 2,
  rounds: 10,
  strategy: "FED_PROX",
  proximal_mu: 0.01,
  privacy: { mechanism: "DP_SGD", noise_multiplier: 1.1, max_grad_norm: 1.0, target_epsilon: 3.0 },
  dataset_id: "breast-cancer-wisconsin.csv",
  model_arch: "SimpleMLP",
};

function issuePaths(input: unknown, schema = FederationJob): { path: string; rule: string }[] {
  try {
    parseContract(schema, input, "FederationJob");
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return (e as ValidationError).issues;
  }
  throw new Error("expected a validation error");
}

describe("FederationJob", () => {
  it("accepts a valid job and fills defaults", () => {
    const job = parseContract(FederationJob, validJob, "FederationJob");
    expect(job.privacy.delta).toBe(1e-5);
    expect(job.strategy).toBe("FED_PROX");
  });

  it.each([
    ["job_id", { job_id: "not-a-uuid" }, /UUID/],
    ["clients", { clients: ["a", "a"] }, /duplicates/],
    ["clients", { clients: [] }, /at least one/],
    ["min_clients", { min_clients: 4 }, /<= clients.length \(3\)/],
    ["min_clients", { min_clients: 0 }, />= 1/],
    ["rounds", { rounds: 0 }, />= 1/],
    ["rounds", { rounds: 10_001 }, /<= 10000/],
    ["rounds", { rounds: 2.5 }, /integer/],
    ["strategy", { strategy: "FED_MAGIC" }, /FED_AVG/],
    ["proximal_mu", { proximal_mu: -0.1 }, />= 0/],
    ["strategy_options.beta", { strategy: "TRIMMED_MEAN", strategy_options: { beta: 0.7 } }, /< 0.5/],
    ["strategy_options.byzantine", { strategy: "KRUM", strategy_options: { byzantine: 1.5 } }, /integer/],
    ["strategy_options.beta", { strategy: "KRUM", strategy_options: { beta: 0.1 } }, /not an option of KRUM/],
    ["strategy_options.server_lr", { strategy: "FED_ADAM", strategy_options: { server_lr: 0 } }, /> 0/],
    ["strategy_options.variant", { strategy: "FED_YOGI", strategy_options: { variant: "x" } }, /reddi|flower/],
    ["strategy_options.mu", { strategy: "FED_PROX", strategy_options: { mu: 1 } }, /not an option of FED_PROX/],
    ["strategy_options.total_clients", { strategy: "SCAFFOLD", strategy_options: { total_clients: 9 } }, /not an option/],
    ["strategy_options.multi_krum", { strategy: "MULTI_KRUM", strategy_options: { multi_krum: 1 } }, />= 2/],
    [
      "strategy_options.multi_krum",
      { strategy: "MULTI_KRUM", min_clients: 3, strategy_options: { multi_krum: 4 } },
      /<= min_clients - byzantine \(3\)/,
    ],
    [
      "strategy_options.byzantine",
      { strategy: "KRUM", min_clients: 3, strategy_options: { byzantine: 1 } },
      /needs min_clients >= 5/,
    ],
    ["min_clients", { strategy: "KRUM", min_clients: 2 }, /KRUM with f = 0 needs min_clients >= 3/],
    ["privacy.target_epsilon", { privacy: { ...validJob.privacy, target_epsilon: 6 } }, /hard ceiling/],
    ["privacy.noise_multiplier", { privacy: { ...validJob.privacy, noise_multiplier: 0 } }, /> 0/],
    ["privacy.max_grad_norm", { privacy: { ...validJob.privacy, max_grad_norm: -1 } }, /> 0/],
    ["privacy.mechanism", { privacy: { ...validJob.privacy, mechanism: "LAPLACE" } }, /DP_SGD/],
    ["privacy.delta", { privacy: { ...validJob.privacy, delta: 1 } }, /<= 0.001/],
    ["privacy.delta", { privacy: { ...validJob.privacy, delta: 0.002 } }, /<= 0.001/],
    ["dataset_id", { dataset_id: "" }, /non-empty/],
    ["dataset_id", { dataset_id: "../../../../victim/owned.csv" }, /'\.\.'/],
    ["dataset_id", { dataset_id: "/etc/passwd" }, /relative/],
    ["dataset_id", { dataset_id: "a\u0000b.csv" }, /control/],
    ["clients.0", { clients: ["../escape", "b"], min_clients: 1 }, /letters, digits/],
    ["clients.0", { clients: ["a\u0000b", "b"], min_clients: 1 }, /letters, digits/],
    ["clients.0", { clients: ["x".repeat(5000), "b"], min_clients: 1 }, /at most 128/],
    ["model_arch", { model_arch: "x".repeat(5000) }, /at most 128/],
  ])("rejects a bad %s, naming the field and the rule", (field, patch, rule) => {
    const issues = issuePaths({ ...validJob, ...patch });
    const hit = issues.find((i) => i.path === field);
    expect(hit, JSON.stringify(issues)).toBeDefined();
    expect(hit!.rule).toMatch(rule);
  });

  it.each(["FED_AVG", "FED_PROX", "SCAFFOLD", "FED_ADAM", "FED_YOGI", "KRUM", "MULTI_KRUM", "MEDIAN", "TRIMMED_MEAN"])(
    "accepts strategy %s with its defaults (no strategy_options)",
    (strategy) => {
      const job = parseContract(FederationJob, { ...validJob, strategy, min_clients: 3 }, "FederationJob");
      expect(job.strategy).toBe(strategy);
    },
  );

  it("rejects unknown fields instead of silently dropping them", () => {
    const issues = issuePaths({ ...validJob, secret_backdoor: true });
    expect(issues[0].rule).toMatch(/unknown field.*secret_backdoor/);
  });

  it("puts the field and rule in the error message", () => {
    expect(() => parseContract(FederationJob, { ...validJob, rounds: -3 }, "FederationJob")).toThrow(
      /invalid FederationJob: rounds: must be >= 1/,
    );
  });
});

describe("PrivacyConfig and AttestationReport", () => {
  it("validates status values", () => {
    const ok = {
      node_id: "n1",
      hardware_type: "NVIDIA_H100_HOPPER",
      enclave_signature: "sig",
      measurement_hash: "ab".repeat(48),
      status: "TRUSTED",
    };
    expect(parseContract(AttestationReport, ok, "AttestationReport").status).toBe("TRUSTED");
    expect(() => parseContract(AttestationReport, { ...ok, status: "MAYBE" }, "AttestationReport")).toThrow(/status/);
  });
  it("requires the mechanism", () => {
    expect(() => parseContract(PrivacyConfig, { noise_multiplier: 1, max_grad_norm: 1, target_epsilon: 1 }, "p")).toThrow(
      /mechanism/,
    );
  });
});

describe("published JSON Schema", () => {
  it("matches the committed files in schemas/", () => {
    for (const [name, schema] of Object.entries(jsonSchemas())) {
      const committed = JSON.parse(readFileSync(new URL(`../../schemas/${name}.schema.json`, import.meta.url), "utf8"));
      expect(committed, `schemas/${name}.schema.json is stale: run npm run schemas`).toEqual(schema);
    }
  });
  it("states the same rules as the zod contract", () => {
    const doc = jsonSchemas().FederationJob as { $defs: Record<string, { required: string[]; additionalProperties: boolean }> };
    const job = doc.$defs.FederationJob;
    expect(job.required).toEqual(expect.arrayContaining(["job_id", "clients", "min_clients", "rounds", "privacy"]));
    expect(job.additionalProperties).toBe(false);
  });
});
