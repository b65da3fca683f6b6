// `coreason-enclave/coordinator`: the federated rounds, the attestation gate's inputs and client-level DP.
export * from "./coordinator.js";
export * from "./client-level-dp.js";
export type { BoundEvidence } from "../federation/agent-handle.js";
export type * from "../federation/task.js";
export * from "./attestation-gate.js";
export type * from "./events.js";
export type { AgentHandle } from "../federation/agent-handle.js";
