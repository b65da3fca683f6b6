import { availableParallelism } from "node:os";
import { isMainThread } from "node:worker_threads";
import { EnclaveError } from "../errors.js";
import type { Kernels } from "./kernels.js";
import { NativeKernels, nativeStatus, type NativeStatus } from "./native-kernels.js";
import { TypeScriptKernels } from "./ts-kernels.js";

/**
 * Backend selection. `auto` takes the native addon when it loads, else the TypeScript kernels.
 * Environment (read when no explicit argument is given):
 *   ENCLAVE_KERNELS=auto|native|typescript  forcing native where it is absent is an error
 *   ENCLAVE_KERNELS_CPU=avx512|avx2-fma|generic  pin the native CPU path (must be supported)
 *   ENCLAVE_THREADS=n  threads per large gemm (default: min(cores, 4) on the main thread,
 *                      1 in worker threads, which already run in parallel)
 */
export type KernelPreference = "auto" | "native" | "typescript";

export const KERNEL_PREFERENCES: readonly KernelPreference[] = ["auto", "native", "typescript"];
export const NATIVE_CPU_PATHS: readonly string[] = ["avx512", "avx2-fma", "generic"];
const MAX_THREADS = 64;

export interface KernelOptions {
  /** Native CPU path; default ENCLAVE_KERNELS_CPU, else the best the machine supports. */
  cpuPath?: string;
  /** Threads for large native gemms; default ENCLAVE_THREADS, else see above. */
  threads?: number;
}

/** The backend could not be chosen as asked: code KERNEL_BACKEND_UNAVAILABLE or KERNEL_CONFIG_INVALID. */
export class KernelBackendError extends EnclaveError {}

function configError(message: string): never {
  throw new KernelBackendError("KERNEL_CONFIG_INVALID", message);
}

function envValue(name: string): string | undefined {
  const v = process.env[name]?.trim();
  return v ? v : undefined;
}

function preferenceFromEnv(): KernelPreference {
  const v = envValue("ENCLAVE_KERNELS");
  if (v === undefined) return "auto";
  if (!(KERNEL_PREFERENCES as readonly string[]).includes(v))
    configError("ENCLAVE_KERNELS must be one of auto, native, typescript");
  return v as KernelPreference;
}

function threadsFromEnv(): number | undefined {
  const v = envValue("ENCLAVE_THREADS");
  if (v === undefined) return undefined;
  if (!/^[0-9]{1,2}$/.test(v)) configError(`ENCLAVE_THREADS must be an integer in [1, ${MAX_THREADS}]`);
  return Number(v);
}

function defaultThreads(): number {
  return isMainThread ? Math.max(1, Math.min(availableParallelism(), 4)) : 1;
}

export function loadKernels(preference?: KernelPreference, options: KernelOptions = {}): Kernels {
  const pref = preference ?? preferenceFromEnv();
  if (!KERNEL_PREFERENCES.includes(pref))
    configError("kernel preference must be one of auto, native, typescript");
  if (pref === "typescript") return new TypeScriptKernels();

  const cpuPath = options.cpuPath ?? envValue("ENCLAVE_KERNELS_CPU");
  if (cpuPath !== undefined && !NATIVE_CPU_PATHS.includes(cpuPath))
    configError("ENCLAVE_KERNELS_CPU / cpuPath must be one of avx512, avx2-fma, generic");
  const threads = options.threads ?? threadsFromEnv() ?? defaultThreads();
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS)
    configError(`ENCLAVE_THREADS / threads must be an integer in [1, ${MAX_THREADS}]`);

  const status = nativeStatus();
  if (!status.available) {
    if (pref === "native")
      throw new KernelBackendError(
        "KERNEL_BACKEND_UNAVAILABLE",
        `native kernels were requested but ${status.reason}; run \`npm rebuild\` with a C++ compiler, or use ENCLAVE_KERNELS=typescript`,
      );
    return new TypeScriptKernels();
  }
  const native = NativeKernels.create(cpuPath, threads);
  if (!native)
    throw new KernelBackendError(
      "KERNEL_BACKEND_UNAVAILABLE",
      `native CPU path ${cpuPath ?? "(default)"} is not supported on this machine (supported: ${status.paths.join(", ")})`,
    );
  return native;
}

let cached: Kernels | undefined;

/** The process-wide (per worker thread) default backend, chosen once from the environment. */
export function kernels(): Kernels {
  cached ??= loadKernels();
  return cached;
}

export interface KernelBackendInfo {
  readonly backend: "native" | "typescript";
  /** e.g. "native-avx2-fma" or "typescript". */
  readonly name: string;
  readonly cpuPath: string | null;
  readonly threads: number;
  readonly native: NativeStatus;
}

/** What a Kernels instance runs on, and whether native kernels are available here at all. */
export function describeKernels(k: Kernels = kernels()): KernelBackendInfo {
  if (k instanceof NativeKernels)
    return {
      backend: "native",
      name: k.name,
      cpuPath: k.cpuPath,
      threads: k.threads,
      native: nativeStatus(),
    };
  return { backend: "typescript", name: k.name, cpuPath: null, threads: 1, native: nativeStatus() };
}
