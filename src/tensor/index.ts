export * from "./kernels.js";
export * from "./tensor.js";
export { TypeScriptKernels } from "./ts-kernels.js";
