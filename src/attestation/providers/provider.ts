import { EnclaveError } from "../../errors.js";
import type { Evidence, EvidenceLabel } from "../evidence.js";
import { REPORT_DATA_BYTES } from "../binding.js";
import type { AttestationErrorCode } from "../errors.js";
import type { EvidenceKind } from "../types.js";

/** Collects attestation evidence whose report-data field carries the given 64 bytes. */
export interface EvidenceProvider {
  readonly kind: EvidenceKind;
  readonly label: EvidenceLabel;
  /** Human-readable description of the interface used (e.g. "configfs-tsm (sev_guest)"). */
  readonly description: string;
  collect(reportData: Uint8Array): Promise<Evidence>;
}

/**
 * Collection failed. Codes: PROVIDER_UNSUPPORTED (the interface exists but cannot be driven from
 * Node), PROVIDER_FAILED (the kernel/runtime refused), TSM_CONFLICT (a concurrent writer changed
 * the configfs entry), REPORT_DATA_MISMATCH (the evidence does not carry what we asked for).
 */
export class ProviderError extends EnclaveError<AttestationErrorCode> {
  readonly provider: string;
  constructor(code: AttestationErrorCode, provider: string, message: string, options?: { cause?: unknown }) {
    super(code, `${provider}: ${message}`, options);
    this.provider = provider;
  }
}

export function checkReportData(provider: string, reportData: Uint8Array): void {
  if (!(reportData instanceof Uint8Array) || reportData.length !== REPORT_DATA_BYTES) {
    throw new ProviderError(
      "PROVIDER_FAILED",
      provider,
      `report data must be exactly ${REPORT_DATA_BYTES} bytes`,
    );
  }
}

/** A short, data-free description of an OS error (code only; paths are ours and safe to name). */
export function osReason(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  return typeof code === "string" ? code : ((err as Error)?.name ?? "error");
}
