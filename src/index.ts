/**
 * The root surface of coreason-enclave: what a user's own script needs, one line per feature.
 * Everything else is reachable through a subpath named after its role (`coreason-enclave/privacy`,
 * `/contracts`, `/data`, `/model`, `/training`, `/strategies`, `/attestation`,
 * `/tensor`, `/coordinator`, `/agent`, `/simulation`), listed in the README. Add a name here only when users need it on the first day;
 * otherwise add it to the subpath's own index.
 */

// Errors: typed, with a stable `code`; messages name fields, never data values.
export { EnclaveError, ValidationError, type FieldIssue } from "./errors.js";

// Contracts (zod, published as JSON Schema): parse and validate what crosses a boundary.
export {
  AgentConfig,
  AggregationStrategy,
  AttestationReport,
  DatasetSchema,
  FederationJob,
  ModelSpec,
  PrivacyConfig,
  TrustPolicy,
  parseContract,
  jsonSchemas,
  type FederationJobInput,
  type PrivacyConfigInput,
} from "./schemas/index.js";

// Privacy: accounting, the Privacy Guard and its persistent ledger.
export { computeEpsilon, getNoiseMultiplier } from "./privacy/accountant/index.js";
export { PrivacyGuard, PrivacyBudgetExhaustedError } from "./privacy/guard.js";
export { BudgetLedger } from "./privacy/budget-ledger.js";

// Data, model and local training.
export { loadDataset } from "./data/load.js";
export { Network } from "./model/network.js";
export { buildModelSpec, modelArchitectures } from "./model/registry.js";
export { parseSafetensors, serializeSafetensors, weightsHash } from "./model/safetensors.js";
export { runLocalTraining } from "./training/local-training.js";
export { kernels, loadKernels, describeKernels } from "./tensor/backend.js";

// Federation: strategies, the whole federation on one machine, and the coordinator loop.
export { createStrategy, strategyForJob, type Strategy, type StrategySpec } from "./strategies/index.js";
export { runSimulation, type SimulationOptions, type SimulationSummary } from "./simulation/simulation.js";
export { runFederation, type JobResult, type RoundRecord } from "./coordinator/coordinator.js";
export { AttestationGate } from "./coordinator/attestation-gate.js";
export type { CoordinatorEvent } from "./coordinator/events.js";
export type { AgentHandle } from "./federation/agent-handle.js";
export { LocalAgent, type LocalAgentOptions } from "./agent/local-agent.js";

// Federation across machines: submit a job to a coordinator with an admin kit and follow it.
export {
  orchestrate,
  type JobHandle,
  type JobEvent,
  type JobOutcome,
  type JobRequest,
  type OrchestrateOptions,
  type RoundEvent,
} from "./sdk/orchestrate.js";
export { SdkError, type SdkErrorCode } from "./sdk/errors.js";

// Attestation: appraise evidence against a trust policy.
export {
  appraiseEvidence,
  defaultTrustPolicy,
  loadTrustPolicy,
  parseTrustPolicy,
  type Appraisal,
  type Evidence,
} from "./attestation/index.js";

// Confidential inference: seal input to a key that provably lives in the enclave.
export { ConfidentialClient, createEnclaveClient, InferenceServer } from "./inference/index.js";
