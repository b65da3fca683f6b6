import type { Appraisal } from "./appraise.js";
import type { TcbStatus } from "./dcap/tcb-status.js";
import type { VerificationResult } from "./types.js";

/**
 * What an appraisal established that a ledger and a dashboard show, as identifiers and numbers
 * only: the platform's TCB values, Intel's TCB status and, for an untrusted verdict, the name of
 * the first check that failed. The check's own sentence stays out (entries hold no free text); a
 * reader gets it from `enclave verify` or from the check's name (docs/attestation.md).
 */
export interface AppraisalFacts {
  /** `name=value` pairs joined with commas (`bootloader=3,tee=0,snp=8,microcode=115`). */
  tcb?: string;
  tcb_status?: TcbStatus;
  failed_check?: string;
}

/** A TCB summary's shape: lower-case names, values decimal, dotted versions or hex. */
export const TCB_SUMMARY =
  /^[a-z][a-z0-9_]{0,31}=(?:[0-9]{1,20}(?:\.[0-9]{1,10}){0,4}|[0-9a-f]{2,96})(?:,[a-z][a-z0-9_]{0,31}=(?:[0-9]{1,20}(?:\.[0-9]{1,10}){0,4}|[0-9a-f]{2,96})){0,15}$/;
/** A check's name as verifiers and the policy name them (`signature`, `policy.min_tcb`). */
export const CHECK_NAME = /^[a-z][a-z0-9_.-]{0,63}$/;

type Pairs = [string, number | string | undefined][];

function tcbPairs(v: VerificationResult): Pairs {
  switch (v.kind) {
    case "snp": {
      const t = v.claims.reportedTcb;
      return [
        ["bootloader", t.bootloader],
        ["tee", t.tee],
        ["snp", t.snp],
        ["microcode", t.microcode],
        ["fmc", t.fmc],
        ["guest_svn", v.claims.guestSvn],
      ];
    }
    case "tdx":
      return [
        ["tee_tcb_svn", v.claims.teeTcbSvn],
        ["pce_svn", v.claims.pck?.pceSvn],
      ];
    case "sgx":
      return [
        ["cpu_svn", v.claims.cpuSvn],
        ["isv_svn", v.claims.isvSvn],
        ["pce_svn", v.claims.pceSvn],
      ];
    case "nvidia":
      return [
        ["driver", v.claims.driverVersion],
        ["vbios", v.claims.vbiosVersion],
      ];
    default:
      return []; // Nitro has PCRs, not a TCB version; software evidence has none
  }
}

/** The facts of one appraisal's result (the verifier's and the policy's checks, the claims). */
export function appraisalFacts(result: Appraisal["result"]): AppraisalFacts {
  const facts: AppraisalFacts = {};
  const value = (x: number | string | undefined) =>
    typeof x === "number" ? String(x) : typeof x === "string" ? x.toLowerCase().replace(/^0x/, "") : "";
  const pairs = ("unread" in result ? [] : tcbPairs(result))
    .map(([k, x]) => `${k}=${value(x)}`)
    .filter((p) => !p.endsWith("="));
  const tcb = pairs.join(",");
  if (tcb && TCB_SUMMARY.test(tcb)) facts.tcb = tcb;
  if ((result.kind === "tdx" || result.kind === "sgx") && !("unread" in result) && result.claims.tcbStatus)
    facts.tcb_status = result.claims.tcbStatus;
  const failed = result.checks.find((c) => c.status === "fail");
  if (failed && CHECK_NAME.test(failed.name)) facts.failed_check = failed.name;
  return facts;
}
