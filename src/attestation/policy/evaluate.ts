import type { TrustPolicy } from "../../schemas/trust-policy.js";
import { isHardwareKind } from "../evidence.js";
import type { CheckResult, EvidenceKind } from "../types.js";
import type { PolicyFacts } from "./facts.js";

const pass = (name: string, detail: string): CheckResult => ({ name, status: "pass", detail });
const fail = (name: string, detail: string): CheckResult => ({ name, status: "fail", detail });
const skip = (name: string, detail: string): CheckResult => ({ name, status: "skipped", detail });

/** Is this kind of evidence acceptable at all? */
export function kindCheck(policy: TrustPolicy, kind: EvidenceKind): CheckResult {
  const name = "policy.kind";
  if (kind === "simulated") {
    return policy.allow_simulated
      ? pass(name, "simulated evidence allowed by the policy (allow_simulated: true): no hardware protection")
      : fail(
          name,
          "simulated evidence is not hardware-backed; the policy does not allow it (allow_simulated: false)",
        );
  }
  if (kind === "insecure") {
    return policy.allow_insecure
      ? pass(name, "insecure evidence allowed by the policy (allow_insecure: true): no hardware protection")
      : fail(
          name,
          "insecure evidence declares no hardware protection; the policy does not allow it (allow_insecure: false)",
        );
  }
  return (policy.allowed_kinds as string[]).includes(kind)
    ? pass(name, `${kind} is an allowed evidence kind`)
    : fail(name, `${kind} is not in allowed_kinds [${policy.allowed_kinds.join(", ")}]`);
}

export function debugCheck(policy: TrustPolicy, kind: EvidenceKind, debug: boolean): CheckResult {
  const name = "policy.debug";
  if (!isHardwareKind(kind)) return skip(name, "no hardware debug state for software evidence");
  if (kind === "nvidia") return skip(name, "the GPU's SPDM evidence carries no debug indicator");
  if (!debug) return pass(name, "not a debuggable guest/enclave");
  return policy.allow_debug
    ? pass(
        name,
        "debuggable guest/enclave allowed by the policy (allow_debug: true): the host can read its memory",
      )
    : fail(name, "debuggable guest/enclave: the host can read its memory (allow_debug: false)");
}

type ReferenceList = Record<string, unknown>[];

function referencesFor(
  policy: TrustPolicy,
  kind: EvidenceKind,
): { list: ReferenceList; where: string } | undefined {
  switch (kind) {
    case "snp":
      return { list: policy.snp.reference_values, where: "snp.reference_values" };
    case "tdx":
      return { list: policy.tdx.reference_values, where: "tdx.reference_values" };
    case "sgx":
      return { list: policy.sgx.reference_values, where: "sgx.reference_values" };
    case "nitro":
      return { list: policy.nitro.reference_values, where: "nitro.reference_values" };
    case "simulated":
      return { list: policy.simulated.reference_values, where: "simulated.reference_values" };
    default:
      return undefined;
  }
}

/**
 * Measurements against the allow-list: the evidence must match at least one reference entry on every
 * field that entry names (entries are whole tuples, so values of different builds cannot be mixed).
 */
/**
 * The isolated runtime the agent's tasks run in: with `runtime.measurements` pinned, the agent must
 * claim one of them (authenticated by policy.binding, which binds the claim into the report data);
 * unpinned, any runtime or none is accepted.
 */
export function runtimeCheck(policy: TrustPolicy, claimed: string | undefined): CheckResult {
  const name = "policy.runtime_measurement";
  const pinned = policy.runtime.measurements;
  if (pinned.length === 0)
    return skip(
      name,
      claimed
        ? `no runtime measurement pinned in the policy: runtime ${claimed} is accepted`
        : "no runtime measurement pinned in the policy, and none claimed",
    );
  if (!claimed)
    return fail(name, "the policy pins a runtime measurement; the agent claims no isolated runtime");
  return pinned.includes(claimed)
    ? pass(name, `runtime ${claimed} is pinned in the policy`)
    : fail(name, `runtime ${claimed} matches none of the ${pinned.length} pinned runtime measurements`);
}

export function measurementCheck(policy: TrustPolicy, kind: EvidenceKind, facts: PolicyFacts): CheckResult {
  const name = "policy.measurement";
  if (kind === "nvidia") return nvidiaMeasurementCheck(policy, facts);
  if (kind === "insecure") return skip(name, "insecure evidence has no meaningful measurement");
  const refs = referencesFor(policy, kind);
  if (!refs || refs.list.length === 0) {
    return skip(
      name,
      `no reference values in the policy (${refs?.where ?? kind}): any measurement is accepted`,
    );
  }
  const missing = new Set<string>();
  for (const ref of refs.list) {
    let ok = true;
    for (const [field, want] of Object.entries(ref)) {
      if (want === undefined) continue;
      const fact = field === "isv_prod_id" ? facts.isvProdId : facts.fields[field];
      if (fact === undefined) {
        missing.add(field);
        ok = false;
        break;
      }
      if (String(fact).toLowerCase() !== String(want).toLowerCase()) {
        ok = false;
        break;
      }
    }
    if (ok) {
      const names = Object.keys(ref).filter((k) => ref[k] !== undefined);
      return pass(name, `matches a reference entry of ${refs.where} on ${names.join(", ")}`);
    }
  }
  const extra = missing.size ? ` (the evidence lacks ${[...missing].join(", ")})` : "";
  return fail(name, `matches none of the ${refs.list.length} entries of ${refs.where}${extra}`);
}

function nvidiaMeasurementCheck(policy: TrustPolicy, facts: PolicyFacts): CheckResult {
  const name = "policy.measurement";
  const refs = Object.entries(policy.nvidia.reference_measurements);
  if (refs.length === 0) {
    return skip(
      name,
      "no reference measurements in the policy (nvidia.reference_measurements): any firmware is accepted",
    );
  }
  const have = facts.nvidiaMeasurements;
  if (!have) return fail(name, "the evidence's measurement blocks are unavailable");
  const bad = refs.filter(([index, allowed]) => {
    const value = have[index];
    return value === undefined || !allowed.includes(value.toLowerCase());
  });
  return bad.length
    ? fail(name, `measurement index(es) ${bad.map(([i]) => i).join(", ")} match no reference value`)
    : pass(name, `${refs.length} measurement index(es) match nvidia.reference_measurements`);
}

/** Minimum TCB / security version numbers, per kind. */
export function tcbChecks(policy: TrustPolicy, kind: EvidenceKind, facts: PolicyFacts): CheckResult[] {
  const out: CheckResult[] = [];
  if (kind === "snp") {
    const min = policy.snp.min_tcb;
    if (!min) out.push(skip("policy.min_tcb", "no snp.min_tcb in the policy"));
    else if (!facts.snpTcb) out.push(fail("policy.min_tcb", "the report's TCB is unavailable"));
    else {
      const t = facts.snpTcb;
      const low = (["bootloader", "tee", "snp", "microcode"] as const).filter((k) => t[k] < min[k]);
      if (t.fmc !== undefined && t.fmc < min.fmc) low.push("fmc" as never);
      out.push(
        low.length
          ? fail("policy.min_tcb", `reported TCB below snp.min_tcb in ${low.join(", ")}`)
          : pass("policy.min_tcb", "reported TCB meets snp.min_tcb in every component"),
      );
    }
    if (policy.snp.min_guest_svn !== undefined) {
      out.push(
        facts.snpGuestSvn === undefined
          ? fail("policy.min_guest_svn", "GUEST_SVN unavailable")
          : facts.snpGuestSvn >= policy.snp.min_guest_svn
            ? pass("policy.min_guest_svn", `GUEST_SVN ${facts.snpGuestSvn} >= ${policy.snp.min_guest_svn}`)
            : fail("policy.min_guest_svn", `GUEST_SVN ${facts.snpGuestSvn} < ${policy.snp.min_guest_svn}`),
      );
    }
    if (policy.snp.allowed_vmpls !== undefined) {
      out.push(
        facts.snpVmpl !== undefined && policy.snp.allowed_vmpls.includes(facts.snpVmpl)
          ? pass("policy.vmpl", `VMPL ${facts.snpVmpl} allowed`)
          : fail("policy.vmpl", `VMPL ${facts.snpVmpl ?? "unknown"} not in snp.allowed_vmpls`),
      );
    }
  }
  if (kind === "tdx" && policy.tdx.min_tee_tcb_svn !== undefined) {
    const min = Buffer.from(policy.tdx.min_tee_tcb_svn, "hex");
    const have = facts.teeTcbSvn ? Buffer.from(facts.teeTcbSvn, "hex") : undefined;
    if (!have || have.length !== 16) out.push(fail("policy.min_tcb", "TEE_TCB_SVN unavailable"));
    else {
      const low = [...min.keys()].filter((i) => have[i] < min[i]);
      out.push(
        low.length
          ? fail("policy.min_tcb", `TEE_TCB_SVN below tdx.min_tee_tcb_svn at byte(s) ${low.join(", ")}`)
          : pass("policy.min_tcb", "TEE_TCB_SVN meets tdx.min_tee_tcb_svn component-wise"),
      );
    }
  }
  if (kind === "sgx" && policy.sgx.min_isv_svn !== undefined) {
    out.push(
      facts.isvSvn === undefined
        ? fail("policy.min_isv_svn", "ISVSVN unavailable")
        : facts.isvSvn >= policy.sgx.min_isv_svn
          ? pass("policy.min_isv_svn", `ISVSVN ${facts.isvSvn} >= ${policy.sgx.min_isv_svn}`)
          : fail("policy.min_isv_svn", `ISVSVN ${facts.isvSvn} < ${policy.sgx.min_isv_svn}`),
    );
  }
  if (kind === "sgx" || kind === "tdx") {
    const accepted = policy.accepted_tcb_statuses as string[];
    out.push(
      facts.tcbStatus === undefined
        ? fail(
            "policy.tcb_status",
            "TCB status unknown: without Intel collateral (TCB Info) the platform could be out of date or revoked",
          )
        : accepted.includes(facts.tcbStatus)
          ? pass("policy.tcb_status", `${facts.tcbStatus} is accepted`)
          : fail(
              "policy.tcb_status",
              `${facts.tcbStatus} is not in accepted_tcb_statuses [${accepted.join(", ")}]`,
            ),
    );
  }
  return out;
}

/**
 * Evidence age: from the signed timestamp when the evidence has one, else from when the nonce it
 * binds was issued (it cannot predate its challenge). Evidence with neither has no provable age.
 */
export function ageCheck(
  policy: TrustPolicy,
  at: Date,
  facts: PolicyFacts,
  nonceIssuedAt?: Date,
): CheckResult {
  const name = "policy.age";
  const max = policy.max_evidence_age_seconds;
  const origin = facts.signedTime ?? nonceIssuedAt;
  const source = facts.signedTime ? "signed timestamp" : "nonce issue time";
  if (!origin)
    return skip(name, "no signed timestamp and no nonce: the evidence's age cannot be established");
  const ageS = (at.getTime() - origin.getTime()) / 1000;
  // Clocks differ a little between an enclave and its verifier; a larger lead is suspicious.
  if (ageS < -60) return fail(name, `${source} is ${Math.round(-ageS)} s in the future`);
  return ageS <= max
    ? pass(name, `${Math.max(0, Math.round(ageS))} s old by its ${source} (max_evidence_age_seconds ${max})`)
    : fail(name, `${Math.round(ageS)} s old by its ${source}, older than max_evidence_age_seconds ${max}`);
}
