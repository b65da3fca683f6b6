/**
 * The policy-relevant facts of one verified piece of evidence, normalised across kinds so the trust
 * policy is evaluated by one piece of code. Each kind's registry entry extracts them from its
 * verifier's claims. Hex is lower case.
 */
export interface PolicyFacts {
  /** Measurement registers by the policy's field names (snp: measurement, host_data, ...). */
  fields: Record<string, string>;
  /** A timestamp inside the signed evidence (Nitro, simulated); absent for SNP/TDX/SGX/NVIDIA. */
  signedTime?: Date;
  /** Intel TCB status from the collateral (SGX/TDX), when the verifier could evaluate it. */
  tcbStatus?: string;
  /** AMD SNP reported TCB (the TCB the VCEK/VLEK was derived for). */
  snpTcb?: { bootloader: number; tee: number; snp: number; microcode: number; fmc?: number };
  snpGuestSvn?: number;
  snpVmpl?: number;
  /** TDX TEE_TCB_SVN (16 bytes hex). */
  teeTcbSvn?: string;
  /** SGX ISVSVN / ISVPRODID of the enclave. */
  isvSvn?: number;
  isvProdId?: number;
  /** NVIDIA SPDM measurement blocks by index (hex). */
  nvidiaMeasurements?: Record<string, string>;
  /** Hex of the evidence's signature (the specification's `enclave_signature`). */
  signature?: string;
  /** Overrides the kind's default `hardware_type` (e.g. a GPU architecture). */
  hardwareType?: string;
}

/** Lower-case hex of a claim that may be a hex string or bytes; undefined otherwise. */
export function hexClaim(value: unknown): string | undefined {
  if (typeof value === "string" && /^([0-9a-fA-F]{2})*$/.test(value)) return value.toLowerCase();
  if (value instanceof Uint8Array) return Buffer.from(value).toString("hex");
  return undefined;
}

export function numberClaim(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (typeof value === "bigint") return Number(value);
  if (typeof value === "string" && /^(0x[0-9a-fA-F]+|[0-9]+)$/.test(value)) return Number(value);
  return undefined;
}

/** A nested claim by dotted path (e.g. "tdReport.mrtd"). */
export function claimAt(claims: Record<string, unknown>, path: string): unknown {
  let cur: unknown = claims;
  for (const key of path.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}
