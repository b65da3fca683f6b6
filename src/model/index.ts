// `coreason-enclave/model`: networks, the model registry and safetensors I/O.
export * from "./layers.js";
export * from "./network.js";
export * from "./parameter.js";
export * from "./registry.js";
export * from "./safetensors.js";
