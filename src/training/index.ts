// `coreason-enclave/training`: the trainer, optimisers and local DP training under the Privacy Guard.
export * from "./local-training.js";
export * from "./optimizer.js";
export * from "./trainer.js";
