import { z } from "zod";
import { AgentConfig } from "./agent-config.js";
import { AttestationReport } from "./attestation.js";
import { DatasetSchema } from "./dataset.js";
import { AggregationStrategy, FederationJob } from "./federation.js";
import { ModelSpec } from "./model.js";
import { PrivacyConfig } from "./privacy.js";
import { TrustPolicy } from "./trust-policy.js";

export * from "./agent-config.js";
export * from "./attestation.js";
export * from "./contract.js";
export * from "./dataset.js";
export * from "./federation.js";
export * from "./model.js";
export * from "./privacy.js";
export * from "./trust-policy.js";

/** The contracts published as JSON Schema for callers in other languages. */
export const PUBLISHED_CONTRACTS = {
  PrivacyConfig,
  AggregationStrategy,
  FederationJob,
  AttestationReport,
  ModelSpec,
  AgentConfig,
  DatasetSchema,
  TrustPolicy,
} as const;

/** JSON Schema (draft 2020-12) of every published contract, describing the accepted input. */
export function jsonSchemas(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(PUBLISHED_CONTRACTS)) {
    out[name] = z.toJSONSchema(schema, { io: "input", target: "draft-2020-12" });
  }
  return out;
}
