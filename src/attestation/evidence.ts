import type { EvidenceKind } from "./types.js";
import type { HardwareType } from "../schemas/attestation.js";

/**
 * How much an Evidence blob can be believed, as declared by the code that produced it:
 * HARDWARE is signed by a TEE's key; SIMULATED is signed by a software key (development only);
 * INSECURE declares that no hardware protection exists. Verifiers never take this label on trust:
 * the kind and the label are re-derived from the bytes.
 */
export type EvidenceLabel = "HARDWARE" | "SIMULATED" | "INSECURE";

/** Roles of certificates that can travel with evidence (the SNP certificate table, a GPU chain). */
export type CertificateRole = "VCEK" | "VLEK" | "ASK" | "ARK" | "CRL" | "GPU_CHAIN" | "OTHER";

export interface EvidenceCertificate {
  role: CertificateRole;
  /** DER bytes (for CRL: a DER CRL). */
  der: Uint8Array;
  /** The table GUID for SNP entries, when known. */
  guid?: string;
}

/** Raw attestation evidence as collected, before any verification. */
export interface Evidence {
  kind: EvidenceKind;
  bytes: Uint8Array;
  certificates?: EvidenceCertificate[];
  /** Local wall-clock time of collection (informational; not signed for hardware kinds). */
  collectedAt: Date;
  label: EvidenceLabel;
}

/** The `hardware_type` the specification's AttestationReport uses for each kind. */
export const HARDWARE_TYPE: Record<EvidenceKind, HardwareType> = {
  snp: "AMD_SEV_SNP",
  tdx: "INTEL_TDX",
  sgx: "INTEL_SGX",
  nitro: "AWS_NITRO",
  nvidia: "NVIDIA_H100_HOPPER",
  simulated: "SIMULATED",
  insecure: "INSECURE",
};

export const HARDWARE_KINDS = [
  "snp",
  "tdx",
  "sgx",
  "nitro",
  "nvidia",
] as const satisfies readonly EvidenceKind[];

export function isHardwareKind(kind: EvidenceKind): boolean {
  return (HARDWARE_KINDS as readonly EvidenceKind[]).includes(kind);
}
