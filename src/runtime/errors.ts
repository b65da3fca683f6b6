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
  /** The guest sent a frame over the limit, not UTF-8 JSON, not an object, or a message out of order. */
  CHANNEL_PROTOCOL: "RUNTIME_CHANNEL_PROTOCOL",
  /** The VMM could not be started (binary missing, bad arguments, no KVM for Firecracker). */
  VMM_START_FAILED: "RUNTIME_VMM_START_FAILED",
  /** The guest did not announce itself, or did not finish its task, within its deadline. */
  GUEST_TIMEOUT: "RUNTIME_GUEST_TIMEOUT",
  /** The VM exited (crash, panic, reset) before the guest finished its task. */
  GUEST_CRASHED: "RUNTIME_GUEST_CRASHED",
  /** The task never reached the runtime (it did not boot or start): none of its reserved steps are charged. */
  TASK_NOT_STARTED: "RUNTIME_TASK_NOT_STARTED",
  /** The guest reported that its task failed; its typed code travels in `guestCode`. */
  GUEST_TASK_FAILED: "RUNTIME_GUEST_TASK_FAILED",
} as const;
export type RuntimeErrorCode = (typeof RuntimeErrorCode)[keyof typeof RuntimeErrorCode];

/** The isolated runtime refused or failed. Messages name files and fields, never data values. */
export class RuntimeError extends EnclaveError {
  declare readonly code: RuntimeErrorCode;
  constructor(code: RuntimeErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/**
 * A typed failure the guest itself reported (its code kept when it looks like one of ours, its message
 * bounded). The message is the guest's, so it is untrusted: an agent sends only the code on.
 */
export class GuestReportedError extends RuntimeError {}
