import { z } from "zod";
import { parseContract } from "../../schemas/contract.js";
import { TCB_STATUSES } from "./tcb-status.js";

const hexOf = (n: number) =>
  z
    .string()
    .regex(new RegExp(`^[0-9a-fA-F]{${2 * n}}$`), `must be ${n} bytes of hex`)
    .transform((s) => s.toLowerCase());
/** One value or an allow-list of values. */
const allowList = (n: number) =>
  z
    .union([hexOf(n), z.array(hexOf(n)).min(1, "an allow-list needs at least one value")])
    .transform((v) => (Array.isArray(v) ? v : [v]));

/** A Revoked TCB is never acceptable, whatever a policy file says. */
const ACCEPTABLE_STATUSES = TCB_STATUSES.filter((s) => s !== "Revoked") as [string, ...string[]];

export const DcapPolicySchema = z
  .object({
    /** TCB statuses accepted after convergence with the QE identity. Default ["UpToDate"]. */
    acceptedTcbStatuses: z
      .array(z.enum(ACCEPTABLE_STATUSES, "must be a known, non-revoked TCB status"))
      .min(1)
      .optional(),
    /** Accept debug TDs / debug enclaves. Default false. */
    allowDebug: z.boolean().optional(),
    tdx: z
      .object({
        mrtd: allowList(48).optional(),
        /** Per RTMR index 0..3: an allow-list, or null for "any value". */
        rtmr: z
          .array(z.union([z.array(hexOf(48)).min(1), z.null()]))
          .max(4)
          .optional(),
        mrconfigid: allowList(48).optional(),
        mrowner: allowList(48).optional(),
        /** Minimum TEE_TCB_SVN, compared byte by byte (each component must be >=). */
        minTeeTcbSvn: hexOf(16).optional(),
      })
      .strict()
      .optional(),
    sgx: z
      .object({
        mrenclave: allowList(32).optional(),
        mrsigner: allowList(32).optional(),
        minIsvSvn: z.number().int().min(0).max(0xffff).optional(),
        isvProdId: z.number().int().min(0).max(0xffff).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type DcapPolicyInput = z.input<typeof DcapPolicySchema>;
export type DcapPolicy = z.output<typeof DcapPolicySchema>;

export function parseDcapPolicy(input: unknown): DcapPolicy {
  return parseContract(DcapPolicySchema, input ?? {}, "DCAP policy");
}
