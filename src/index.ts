// Public API of coreason-enclave.
export * from "./errors.js";
export * from "./schemas/index.js";
export * from "./data/index.js";
export * from "./privacy/accountant/index.js";
export * from "./federation/strategies/index.js";
export * from "./tensor/index.js";
export * from "./attestation/index.js";
export {
  calibrateClientNoise,
  clientLevelEpsilon,
  DEFAULT_CLIENT_SAMPLING_RATE,
} from "./federation/client-level-dp.js";
