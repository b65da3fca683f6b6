export * from "./kernels.js";
export * from "./tensor-math.js";
export * from "./tensor.js";
export { TypeScriptKernels } from "./ts-kernels.js";
export { NativeKernels, nativeStatus, type NativeStatus } from "./native-kernels.js";
export { KernelArgumentError } from "./kernel-args.js";
export {
  describeKernels,
  kernels,
  loadKernels,
  KernelBackendError,
  type KernelBackendInfo,
  type KernelOptions,
  type KernelPreference,
} from "./backend.js";
