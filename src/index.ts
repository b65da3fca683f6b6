// Public API of coreason-enclave.
export * from "./errors.js";
export * from "./schemas/index.js";
export * from "./data/index.js";
export * from "./privacy/accountant/index.js";
export * from "./strategies/index.js";
export * from "./tensor/index.js";
export * from "./attestation/index.js";
export {
  calibrateClientNoise,
  clientLevelEpsilon,
  DEFAULT_CLIENT_SAMPLING_RATE,
} from "./coordinator/client-level-dp.js";
export { runFederation, type JobResult, type RoundRecord } from "./coordinator/coordinator.js";
export { AttestationGate } from "./coordinator/attestation-gate.js";
export type { CoordinatorEvent } from "./coordinator/events.js";
export type { AgentHandle } from "./federation/agent-handle.js";
export { runSimulation, type SimulationOptions, type SimulationSummary } from "./simulation/simulation.js";
export { LocalAgent, type LocalAgentOptions } from "./agent/local-agent.js";
export { Executor } from "./agent/executor.js";
export { Airlock } from "./airlock/airlock.js";
export { PrivacyGuard, PrivacyBudgetExhaustedError } from "./privacy/guard.js";
export { BudgetLedger } from "./privacy/budget-ledger.js";
export { Network } from "./model/network.js";
export { buildModelSpec, modelArchitectures } from "./model/registry.js";
export { parseSafetensors, serializeSafetensors, weightsHash } from "./model/safetensors.js";
export { runLocalTraining } from "./training/local-training.js";
export * from "./inference/index.js";
