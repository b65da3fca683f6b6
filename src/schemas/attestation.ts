import { z } from "zod";

export const AttestationStatus = z.enum(["TRUSTED", "UNTRUSTED"]);
export type AttestationStatus = z.infer<typeof AttestationStatus>;

/** What produced the evidence: a TEE, or software labelled as such (rejected by default policy). */
export const HardwareType = z.enum([
  "AMD_SEV_SNP",
  "INTEL_TDX",
  "INTEL_SGX",
  "AWS_NITRO",
  "NVIDIA_H100_HOPPER",
  "SIMULATED",
  "INSECURE",
]);
export type HardwareType = z.infer<typeof HardwareType>;

const MEASUREMENT = /^(?:(?:[0-9a-f]{2}){32,64}|unavailable)$/;

export const AttestationReport = z
  .object({
    node_id: z.string().min(1, "must be a non-empty string"),
    hardware_type: HardwareType,
    enclave_signature: z.string().min(1, "must be a non-empty string"),
    measurement_hash: z
      .string()
      .regex(MEASUREMENT, "must be 32 to 64 bytes of lowercase hex, or unavailable")
      .meta({
        description:
          "The launch measurement (SNP MEASUREMENT, TDX MRTD, SGX MRENCLAVE, Nitro PCR0, ...) as lowercase hex, or `unavailable` when no evidence could be verified.",
      }),
    status: AttestationStatus,
  })
  .strict()
  .meta({ id: "AttestationReport", description: "The outcome of verifying one node's attestation evidence." });
export type AttestationReport = z.output<typeof AttestationReport>;
