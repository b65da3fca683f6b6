import { EnclaveError } from "../errors.js";

/** Stable codes of the isolated runtime (host probes, hydration, the VMM and its guest). */
export const RuntimeErrorCode = {
  /** `--provider` is not auto, native, lima or wsl2, or the chosen provider cannot run here. */
  PROVIDER_UNAVAILABLE: "RUNTIME_PROVIDER_UNAVAILABLE",
  /** A file the hydrator needs (busybox, kernel, node, a shared library, dist/) is missing. */
  HYDRATE_INPUT_MISSING: "RUNTIME_HYDRATE_INPUT_MISSING",
  /** An input is of the wrong kind: not a regular file, too large, or not a kernel image. */
  HYDRATE_INPUT_INVALID: "RUNTIME_HYDRATE_INPUT_INVALID",
  /** `vmlinux`, `rootfs.cpio` or `manifest.json` is missing, malformed, or does not match its digest. */
  ASSETS_INVALID: "RUNTIME_ASSETS_INVALID",
} as const;
export type RuntimeErrorCode = (typeof RuntimeErrorCode)[keyof typeof RuntimeErrorCode];

/** The isolated runtime refused or failed. Messages name files and fields, never data values. */
export class RuntimeError extends EnclaveError {
  declare readonly code: RuntimeErrorCode;
  constructor(code: RuntimeErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
