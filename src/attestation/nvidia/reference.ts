import { NVDEC_DISABLED } from "./opaque.js";
import type { MeasurementBlock } from "./spdm.js";

/** One golden measurement, as a RIM (swidtag) lists it. */
export interface NvidiaReferenceMeasurement {
  /** SPDM measurement index, 1-based (a RIM's `index` attribute is 0-based: add 1). */
  index: number;
  /** Digest size in bytes the runtime value must have. */
  size: number;
  /** Accepted values (hex); the runtime value must equal one of them. */
  alternatives: readonly string[];
  /** Inactive entries are not compared (nvtrust semantics). */
  active: boolean;
}

/** Reference values for one firmware component (the VBIOS RIM or the driver RIM). */
export interface NvidiaReferenceMeasurements {
  /** Which component the values describe; its version is compared with the report's. */
  component: "vbios" | "driver";
  /** The RIM's colloquialVersion, e.g. "96.00.74.00.1A" or "550.90.07"; compared case-insensitively. */
  version?: string;
  measurements: readonly NvidiaReferenceMeasurement[];
  /** Set by verifyNvidiaRim when the RIM's XML signature and chain verified. */
  authenticated?: { signer: string; rootFingerprint: string };
}

/** The SPDM index whose measurement depends on NVDEC0 and is skipped when it is disabled. */
export const NVDEC_MEASUREMENT_INDEX = 36;

export type ComparisonOutcome =
  { ok: true; compared: number; skippedNvdec: boolean } | { ok: false; reason: string; mismatched: number[] };

/**
 * Compare runtime measurement blocks with the active golden values of every reference set.
 * Two sets claiming the same active index is a conflict (nvtrust refuses it as well).
 */
export function compareMeasurements(
  blocks: readonly Pick<MeasurementBlock, "index" | "value">[],
  references: readonly NvidiaReferenceMeasurements[],
  nvdec0Status: number | undefined,
): ComparisonOutcome {
  const golden = new Map<number, NvidiaReferenceMeasurement>();
  for (const set of references) {
    for (const m of set.measurements) {
      if (!m.active) continue;
      if (golden.has(m.index)) {
        return {
          ok: false,
          reason: `reference sets both define active index ${m.index}`,
          mismatched: [m.index],
        };
      }
      golden.set(m.index, m);
    }
  }
  if (golden.size === 0)
    return { ok: false, reason: "reference sets hold no active measurement", mismatched: [] };
  const runtime = new Map(blocks.map((b) => [b.index, b]));
  // Skip only on an explicit "disabled" status; without one the value is compared (fail closed).
  const nvdecDisabled = nvdec0Status === NVDEC_DISABLED;
  const mismatched: number[] = [];
  let compared = 0;
  let skippedNvdec = false;
  for (const [index, ref] of [...golden.entries()].sort((a, b) => a[0] - b[0])) {
    if (index === NVDEC_MEASUREMENT_INDEX && nvdecDisabled) {
      skippedNvdec = true;
      continue;
    }
    compared++;
    const block = runtime.get(index);
    const value = block ? Buffer.from(block.value).toString("hex") : undefined;
    const ok =
      value !== undefined &&
      block!.value.length === ref.size &&
      ref.alternatives.some((alt) => alt.toLowerCase() === value);
    if (!ok) mismatched.push(index);
  }
  if (mismatched.length) {
    return {
      ok: false,
      reason: `measurement index ${mismatched.join(", ")} not among the reference values`,
      mismatched,
    };
  }
  return { ok: true, compared, skippedNvdec };
}
