// Public API of coreason-enclave.
export * from "./errors.js";
export * from "./schemas/index.js";
