// `coreason-enclave/simulation`: the whole federation on one machine.
export * from "./simulation.js";
