import { z } from "zod";

export const AttestationStatus = z.enum(["TRUSTED", "UNTRUSTED"]);
export type AttestationStatus = z.infer<typeof AttestationStatus>;

export const AttestationReport = z
  .object({
    node_id: z.string().min(1, "must be a non-empty string"),
    hardware_type: z.string().min(1, "must be a non-empty string"),
    enclave_signature: z.string().min(1, "must be a non-empty string"),
    measurement_hash: z.string().min(1, "must be a non-empty string"),
    status: AttestationStatus,
  })
  .strict()
  .meta({ id: "AttestationReport", description: "The outcome of verifying one node's attestation evidence." });
export type AttestationReport = z.output<typeof AttestationReport>;
