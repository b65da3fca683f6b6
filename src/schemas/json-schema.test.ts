// The published JSON Schemas, run through a real JSON Schema validator (Ajv, draft 2020-12), against
// the zod contracts: what JSON Schema can say it says (uniqueItems, if/then), and what it cannot is
// named in the schema's description, so a caller in another language knows what the TypeScript
// validator will still refuse.
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { describe, expect, it } from "vitest";
import { AttestationReport, FederationJob, ModelSpec, PrivacyConfig, jsonSchemas } from "./index.js";

const schemas = jsonSchemas() as Record<string, { description?: string; $defs?: Record<string, { description?: string }> }>;
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats.default(ajv);
const accepts = (name: string, value: unknown): boolean => ajv.validate(schemas[name], value) as boolean;

const job = {
  job_id: "3f1c2b9e-8a4d-4c1e-9b7a-2d5e6f708192",
  clients: ["hospital-a", "hospital-b", "lab-c"],
  min_clients: 2,
  rounds: 10,
  strategy: "FED_PROX",
  privacy: { mechanism: "DP_SGD", noise_multiplier: 1.1, max_grad_norm: 1.0, target_epsilon: 3.0 },
  dataset_id: "breast-cancer-wisconsin.csv",
  model_arch: "SimpleMLP",
};
const model = {
  arch: "SimpleMLP",
  input_dim: 4,
  num_classes: 2,
  layers: [
    { type: "linear", in_features: 4, out_features: 8 },
    { type: "relu" },
    { type: "linear", in_features: 8, out_features: 2 },
  ],
  loss: "softmax_cross_entropy",
};

describe("published JSON Schemas vs the zod contracts", () => {
  it("both accept the valid documents", () => {
    expect(accepts("FederationJob", job), JSON.stringify(ajv.errors)).toBe(true);
    expect(accepts("ModelSpec", model), JSON.stringify(ajv.errors)).toBe(true);
    expect(FederationJob.safeParse(job).success).toBe(true);
    expect(ModelSpec.safeParse(model).success).toBe(true);
  });

  it.each([
    ["duplicate clients", "FederationJob", FederationJob, { ...job, clients: ["a", "a"], min_clients: 1 }],
    [
      "client_sampling_rate with DP_SGD",
      "PrivacyConfig",
      PrivacyConfig,
      { ...job.privacy, client_sampling_rate: 0.5 },
    ],
    [
      "client_sampling_rate with DP_SGD, inside a job",
      "FederationJob",
      FederationJob,
      { ...job, privacy: { ...job.privacy, client_sampling_rate: 0.5 } },
    ],
    [
      "an option another strategy has",
      "FederationJob",
      FederationJob,
      { ...job, strategy: "KRUM", strategy_options: { beta: 0.1 } },
    ],
    [
      "an option out of its range",
      "FederationJob",
      FederationJob,
      { ...job, strategy: "TRIMMED_MEAN", strategy_options: { beta: 0.5 } },
    ],
    [
      "binary cross-entropy with 3 classes",
      "ModelSpec",
      ModelSpec,
      {
        ...model,
        num_classes: 3,
        loss: "binary_cross_entropy",
        layers: [{ type: "linear", in_features: 4, out_features: 1 }],
      },
    ],
  ])("both refuse %s", (_what, name, zod, value) => {
    expect(accepts(name, value)).toBe(false);
    expect(zod.safeParse(value).success).toBe(false);
  });

  it("each strategy's own options are valid in both", () => {
    for (const [strategy, strategy_options] of [
      ["FED_ADAM", { server_lr: 0.05, beta1: 0.8, variant: "flower" }],
      ["MULTI_KRUM", { multi_krum: 2 }],
      ["TRIMMED_MEAN", { beta: 0.1 }],
      ["SCAFFOLD", { server_lr: 0.5 }],
    ] as const) {
      const value = { ...job, min_clients: 3, strategy, strategy_options };
      expect(accepts("FederationJob", value), JSON.stringify(ajv.errors)).toBe(true);
      expect(FederationJob.safeParse(value).success, strategy).toBe(true);
    }
  });

  it("DP_FEDAVG with client_sampling_rate stays valid in both", () => {
    const p = { ...job.privacy, mechanism: "DP_FEDAVG", client_sampling_rate: 0.5 };
    expect(accepts("PrivacyConfig", p), JSON.stringify(ajv.errors)).toBe(true);
    expect(PrivacyConfig.safeParse(p).success).toBe(true);
  });

  it.each([
    ["min_clients > clients", "FederationJob", FederationJob, { ...job, min_clients: 4 }, /min_clients <= the number of clients/],
    [
      "Krum's need of min_clients",
      "FederationJob",
      FederationJob,
      { ...job, strategy: "KRUM", strategy_options: { byzantine: 1 } },
      /KRUM and MULTI_KRUM need min_clients >= 2f \+ 3/,
    ],
    [
      "layer widths that do not chain",
      "ModelSpec",
      ModelSpec,
      { ...model, layers: [{ type: "linear", in_features: 5, out_features: 2 }] },
      /layer widths chain/,
    ],
  ])("names what only the TypeScript validator checks: %s", (_what, name, zod, value, said) => {
    expect(accepts(name, value)).toBe(true); // beyond JSON Schema...
    expect(zod.safeParse(value).success).toBe(false); // ...refused by zod...
    // ...and the schema says so (the contract's own entry, top level or under $defs)
    expect(schemas[name].description ?? schemas[name].$defs?.[name]?.description).toMatch(said);
  });

  it("AttestationReport: hardware_type is one of the known values, measurement_hash is hex or unavailable", () => {
    const report = {
      node_id: "hospital-a",
      hardware_type: "AMD_SEV_SNP",
      enclave_signature: "ab".repeat(64),
      measurement_hash: "0f".repeat(48),
      status: "TRUSTED",
    };
    expect(accepts("AttestationReport", report), JSON.stringify(ajv.errors)).toBe(true);
    expect(AttestationReport.safeParse({ ...report, measurement_hash: "unavailable" }).success).toBe(true);
    for (const bad of [
      { hardware_type: "QUANTUM_TEE" },
      { measurement_hash: "sha256:abc" },
      { measurement_hash: "0F".repeat(48) },
      { measurement_hash: "0f".repeat(16) },
    ]) {
      expect(accepts("AttestationReport", { ...report, ...bad }), JSON.stringify(bad)).toBe(false);
      expect(AttestationReport.safeParse({ ...report, ...bad }).success, JSON.stringify(bad)).toBe(false);
    }
  });
});
