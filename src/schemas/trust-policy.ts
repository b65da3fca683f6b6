import { z } from "zod";

/**
 * The trust policy a verifier (the coordinator, an SDK caller, `enclave verify --policy`) applies on
 * top of the vendor checks: which kinds of evidence it accepts, which measurements, which TCB, how old.
 * Every field has a fail-closed default, so `{}` is a valid, strict policy that accepts any genuine,
 * non-debug, current hardware evidence and reports the (empty) measurement allow-lists as skipped.
 */

/** Lower-case hex of exactly `bytes` bytes (upper case is accepted and normalised). */
function hexOf(bytes: number) {
  return z
    .string()
    .regex(new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`), `must be ${bytes} bytes of hex (${bytes * 2} digits)`)
    .transform((s) => s.toLowerCase());
}

const u8 = z.number().int("must be an integer").min(0, "must be >= 0").max(255, "must be <= 255");
const u16 = z.number().int("must be an integer").min(0, "must be >= 0").max(65535, "must be <= 65535");
const u32 = z
  .number()
  .int("must be an integer")
  .min(0, "must be >= 0")
  .max(0xffffffff, "must be <= 4294967295");

/** Hardware evidence kinds a policy can allow. Simulated and insecure have their own explicit switches. */
export const HardwareEvidenceKind = z.enum(["snp", "tdx", "sgx", "nitro", "nvidia"]);
export type HardwareEvidenceKind = z.infer<typeof HardwareEvidenceKind>;

/** Intel's TCB statuses (PCS TCB Info / QE Identity). "Revoked" exists only to be rejected. */
export const TcbStatus = z.enum([
  "UpToDate",
  "SWHardeningNeeded",
  "ConfigurationNeeded",
  "ConfigurationAndSWHardeningNeeded",
  "OutOfDate",
  "OutOfDateConfigurationNeeded",
  "Revoked",
]);
export type TcbStatus = z.infer<typeof TcbStatus>;

/** AMD SEV-SNP TCB_VERSION components (the minimum each must reach). */
const SnpMinTcb = z
  .object({
    bootloader: u8.default(0),
    tee: u8.default(0),
    snp: u8.default(0),
    microcode: u8.default(0),
    /** Turin and later only; ignored for earlier products. */
    fmc: u8.default(0),
  })
  .strict();

const SnpReference = z
  .object({
    measurement: hexOf(48),
    host_data: hexOf(32).optional(),
    family_id: hexOf(16).optional(),
    image_id: hexOf(16).optional(),
  })
  .strict();

const TdxReference = z
  .object({
    mrtd: hexOf(48),
    rtmr0: hexOf(48).optional(),
    rtmr1: hexOf(48).optional(),
    rtmr2: hexOf(48).optional(),
    rtmr3: hexOf(48).optional(),
    mrconfigid: hexOf(48).optional(),
    mrowner: hexOf(48).optional(),
    mrownerconfig: hexOf(48).optional(),
  })
  .strict();

const SgxReference = z
  .object({
    mrenclave: hexOf(32).optional(),
    mrsigner: hexOf(32).optional(),
    isv_prod_id: u16.optional(),
  })
  .strict()
  .refine((r) => r.mrenclave !== undefined || r.mrsigner !== undefined, {
    message: "must name mrenclave or mrsigner (or both)",
  });

const NitroReference = z
  .object({
    pcr0: hexOf(48),
    pcr1: hexOf(48).optional(),
    pcr2: hexOf(48).optional(),
    pcr3: hexOf(48).optional(),
    pcr4: hexOf(48).optional(),
    pcr8: hexOf(48).optional(),
  })
  .strict();

const SimulatedReference = z.object({ measurement: hexOf(48) }).strict();

const NoDuplicates = <T extends z.ZodType>(item: T) =>
  z
    .array(item)
    .max(1024, "must list at most 1024 entries")
    .refine((a) => new Set(a.map((x) => JSON.stringify(x))).size === a.length, {
      message: "must not contain duplicates",
    });

export const TrustPolicy = z
  .object({
    version: z.literal(1, "must be 1").default(1),
    /** Hardware kinds accepted at all. */
    allowed_kinds: NoDuplicates(HardwareEvidenceKind)
      .min(1, "must allow at least one kind")
      .default(["snp", "tdx", "sgx", "nitro", "nvidia"]),
    /** Debuggable guests/enclaves expose their memory to the host: never trusted unless this is true. */
    allow_debug: z.boolean().default(false),
    /** Simulated evidence proves nothing about hardware; accept it only for development. */
    allow_simulated: z.boolean().default(false),
    /** Insecure evidence is an unsigned-by-hardware declaration of no protection at all. */
    allow_insecure: z.boolean().default(false),
    /** Evidence older than this (signed timestamp or nonce issue time) is stale. */
    max_evidence_age_seconds: z
      .number()
      .int("must be an integer")
      .positive("must be > 0")
      .max(7 * 86400, "must be <= 604800 (7 days)")
      .default(300),
    /** How long a TRUSTED appraisal stands before the node must attest again. */
    reattest_interval_seconds: z
      .number()
      .int("must be an integer")
      .positive("must be > 0")
      .max(7 * 86400, "must be <= 604800 (7 days)")
      .default(3600),
    /** Intel TCB statuses accepted for SGX and TDX (from the TCB Info in the collateral). */
    accepted_tcb_statuses: NoDuplicates(TcbStatus)
      .min(1, "must accept at least one status")
      .refine((a) => !a.includes("Revoked"), { message: "must not accept Revoked" })
      .default(["UpToDate", "SWHardeningNeeded"]),
    snp: z
      .object({
        reference_values: NoDuplicates(SnpReference).default([]),
        min_tcb: SnpMinTcb.optional(),
        min_guest_svn: u32.optional(),
        /** AMD processor lines accepted (the product the pinned ARK establishes). */
        allowed_products: NoDuplicates(z.enum(["Milan", "Genoa", "Turin"], "must be Milan, Genoa or Turin"))
          .min(1, "must allow at least one product")
          .optional(),
        /** VMPLs whose reports are accepted (0 is the most privileged). */
        allowed_vmpls: NoDuplicates(z.number().int().min(0, "must be >= 0").max(3, "must be <= 3")).optional(),
      })
      .strict()
      .default({ reference_values: [] }),
    tdx: z
      .object({
        reference_values: NoDuplicates(TdxReference).default([]),
        /** Component-wise minimum of TEE_TCB_SVN (16 bytes). */
        min_tee_tcb_svn: hexOf(16).optional(),
      })
      .strict()
      .default({ reference_values: [] }),
    sgx: z
      .object({
        reference_values: NoDuplicates(SgxReference).default([]),
        min_isv_svn: u16.optional(),
      })
      .strict()
      .default({ reference_values: [] }),
    nitro: z
      .object({
        reference_values: NoDuplicates(NitroReference).default([]),
      })
      .strict()
      .default({ reference_values: [] }),
    nvidia: z
      .object({
        /**
         * Reference measurements by SPDM measurement index ("0".."254"): each listed index must equal
         * one of its values (from NVIDIA's RIMs for the driver and VBIOS in use).
         */
        reference_measurements: z
          .record(
            z.string().regex(/^(0|[1-9][0-9]?|1[0-9]{2}|2[0-4][0-9]|25[0-4])$/, "must be an index 0..254"),
            z
              .array(
                z
                  .string()
                  .regex(/^([0-9a-fA-F]{2}){1,64}$/, "must be 1..64 bytes of hex")
                  .transform((s) => s.toLowerCase()),
              )
              .min(1, "must list at least one value"),
            {
              error: (issue) =>
                issue.code === "invalid_key" ? "keys must be SPDM measurement indices 0..254" : undefined,
            },
          )
          .default({}),
        /** Accepted driver versions as the report states them, e.g. "550.90.07". */
        driver_versions: NoDuplicates(z.string().min(1).max(64)).min(1).optional(),
        /** Accepted VBIOS versions, e.g. "96.00.9f.00.01" (compared case-insensitively). */
        vbios_versions: NoDuplicates(z.string().min(1).max(64)).min(1).optional(),
      })
      .strict()
      .default({ reference_measurements: {} }),
    simulated: z
      .object({
        reference_values: NoDuplicates(SimulatedReference).default([]),
      })
      .strict()
      .default({ reference_values: [] }),
    /**
     * The isolated runtimes (SHA-256 of a hydrated runtime's manifest.json, `enclave runtime hydrate`)
     * an agent's tasks may run in; empty: any runtime, or none, is accepted.
     */
    runtime: z
      .object({ measurements: NoDuplicates(hexOf(32)).default([]) })
      .strict()
      .default({ measurements: [] }),
  })
  .strict()
  .meta({
    id: "TrustPolicy",
    description:
      "What a verifier accepts beyond the vendor checks: evidence kinds, measurements, TCB, debug, age.",
  });
export type TrustPolicy = z.output<typeof TrustPolicy>;
export type TrustPolicyInput = z.input<typeof TrustPolicy>;
