// `coreason-enclave/privacy`: accountants, DP-SGD, the Privacy Guard and its persistent ledger.
export * from "./accountant/index.js";
export * from "./dp-sgd.js";
export * from "./guard.js";
export * from "./budget-ledger.js";
