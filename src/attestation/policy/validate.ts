import { EnclaveError, ValidationError } from "../../errors.js";
import type { TrustPolicy } from "../../schemas/trust-policy.js";
import { bindReportData, BINDING_FIELD, reportDataMatches, REPORT_DATA_BYTES } from "../binding.js";
import { fail, pass, skip, type CheckResult, type Outcome } from "../checks.js";
import { isHardwareKind } from "../evidence.js";
import type { NonceIssuer } from "../nonce.js";
import { NVDEC_DISABLED } from "../nvidia/opaque.js";
import { compareMeasurements, type NvidiaReferenceMeasurements } from "../nvidia/reference.js";
import type { SnpTcb } from "../snp/report.js";
import type {
  EvidenceKind,
  NvidiaVerification,
  SgxVerification,
  SnpVerification,
  TdxVerification,
  VerificationResult,
} from "../types.js";

/**
 * The validator: the trust policy applied to authenticated, typed claims (go-sev-guest's
 * `validate/` after `verify/`). Every policy check lives here and only here: the kind, debug,
 * measurement allow-lists, minimum TCB / SVN, VMPL, product, Intel TCB status, NVIDIA firmware
 * and reference values, the report-data binding, and age. The verifiers authenticate and never
 * read a policy.
 */
export interface ValidateOptions {
  /** Validation time for the evidence's age. */
  at: Date;
  /**
   * The coordinator's challenge and the node key it expects bound into the report data, and the
   * isolated runtime's measurement the agent claims (bound with them; the policy may pin it).
   */
  binding?: { nonce: Uint8Array; publicKey: Uint8Array; runtimeMeasurement?: Uint8Array };
  /** Redeems `binding.nonce` (single use, unexpired) and dates the evidence by its issue time. */
  nonceIssuer?: NonceIssuer;
  /** Alternatively, the 64 bytes the report data must carry. */
  expectedReportData?: Uint8Array;
  /** Fail (rather than skip) the binding when none is given. Default true: it could be a replay. */
  requireFreshness?: boolean;
  /** NVIDIA reference values from RIMs (see verifyNvidiaRim), compared with the GPU's measurements. */
  nvidiaReferences?: readonly NvidiaReferenceMeasurements[];
}

const named =
  (name: string) =>
  (o: Outcome): CheckResult => ({ name, ...o });

/**
 * The policy's checks, in order: kind, debug, measurement, the kind's own (product, VMPL, TCB,
 * SVN, status, firmware), binding, age. `verification` is undefined when the evidence could not
 * be read at all: then only the kind and the binding are judged.
 */
export function validateEvidence(
  kind: EvidenceKind,
  verification: VerificationResult | undefined,
  policy: TrustPolicy,
  options: ValidateOptions,
): CheckResult[] {
  const out: CheckResult[] = [named("policy.kind")(kindCheck(policy, kind))];
  if (verification) {
    out.push(named("policy.debug")(debugCheck(policy, verification)));
    out.push(...measurementChecks(policy, verification, options.nvidiaReferences));
    out.push(...kindChecks(policy, verification));
  }
  const binding = bindingCheck(kind, verification?.reportData, options);
  out.push(named("policy.binding")(binding.outcome));
  const runtime = options.binding?.runtimeMeasurement;
  out.push(named("policy.runtime_measurement")(runtimeCheck(policy, runtime && hex(runtime))));
  if (verification)
    out.push(named("policy.age")(ageCheck(policy, options.at, verification, binding.issuedAt)));
  return out;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/**
 * The isolated runtime the agent's tasks run in: with `runtime.measurements` pinned, the agent must
 * claim one of them (authenticated by policy.binding, which binds the claim into the report data);
 * unpinned, any runtime or none is accepted.
 */
function runtimeCheck(policy: TrustPolicy, claimed: string | undefined): Outcome {
  const pinned = policy.runtime.measurements;
  if (pinned.length === 0)
    return skip(
      claimed
        ? `no runtime measurement pinned in the policy: runtime ${claimed} is accepted`
        : "no runtime measurement pinned in the policy, and none claimed",
    );
  if (!claimed) return fail("the policy pins a runtime measurement; the agent claims no isolated runtime");
  return pinned.includes(claimed)
    ? pass(`runtime ${claimed} is pinned in the policy`)
    : fail(`runtime ${claimed} matches none of the ${pinned.length} pinned runtime measurements`);
}

/** Is this kind of evidence acceptable at all? */
function kindCheck(policy: TrustPolicy, kind: EvidenceKind): Outcome {
  if (kind === "simulated") {
    return policy.allow_simulated
      ? pass("simulated evidence allowed by the policy (allow_simulated: true): no hardware protection")
      : fail(
          "simulated evidence is not hardware-backed; the policy does not allow it (allow_simulated: false)",
        );
  }
  if (kind === "insecure") {
    return policy.allow_insecure
      ? pass("insecure evidence allowed by the policy (allow_insecure: true): no hardware protection")
      : fail(
          "insecure evidence declares no hardware protection; the policy does not allow it (allow_insecure: false)",
        );
  }
  return (policy.allowed_kinds as string[]).includes(kind)
    ? pass(`${kind} is an allowed evidence kind`)
    : fail(`${kind} is not in allowed_kinds [${policy.allowed_kinds.join(", ")}]`);
}

/** Each kind's debug indicator, as its vendor documents it: clear, and set. */
const DEBUG_INDICATOR: Partial<Record<EvidenceKind, { clear: string; set: string }>> = {
  snp: { clear: "guest policy DEBUG bit (19) is clear", set: "guest policy DEBUG bit (19) is set" },
  tdx: { clear: "TD_ATTRIBUTES.DEBUG is clear (production)", set: "TD_ATTRIBUTES.DEBUG is set" },
  sgx: { clear: "ATTRIBUTES.DEBUG is clear (production)", set: "ATTRIBUTES.DEBUG is set" },
  nitro: {
    clear: "PCR0, PCR1 and PCR2 are non-zero (production enclave)",
    set: "debug-mode enclave (all-zero PCR0/1/2)",
  },
};

function debugCheck(policy: TrustPolicy, v: VerificationResult): Outcome {
  if (!isHardwareKind(v.kind)) return skip("no hardware debug state for software evidence");
  const indicator = DEBUG_INDICATOR[v.kind];
  if (!indicator) return skip("the GPU's SPDM evidence carries no debug indicator");
  if (!v.debug) return pass(indicator.clear);
  return policy.allow_debug
    ? pass(`${indicator.set}; allowed by the policy (allow_debug: true): the host can read its memory`)
    : fail(`${indicator.set}: the host can read its memory (allow_debug: false)`);
}

/** The fields a kind's reference values name, read from its claims (lower-case hex). */
function referenceFields(v: VerificationResult): Record<string, string> | undefined {
  switch (v.kind) {
    case "snp": {
      const c = v.claims;
      return {
        measurement: c.measurement,
        host_data: c.hostData,
        family_id: c.familyId,
        image_id: c.imageId,
      };
    }
    case "tdx": {
      const c = v.claims;
      const rtmr = Object.fromEntries(c.rtmr.map((r, i) => [`rtmr${i}`, r]));
      return {
        mrtd: c.mrTd,
        ...rtmr,
        mrconfigid: c.mrConfigId,
        mrowner: c.mrOwner,
        mrownerconfig: c.mrOwnerConfig,
      };
    }
    case "sgx":
      return {
        mrenclave: v.claims.mrEnclave,
        mrsigner: v.claims.mrSigner,
        isv_prod_id: String(v.claims.isvProdId),
      };
    case "nitro": {
      const out: Record<string, string> = {};
      for (const i of [0, 1, 2, 3, 4, 8]) {
        const value = v.claims.pcrs[String(i)];
        if (value !== undefined) out[`pcr${i}`] = value;
      }
      return out;
    }
    case "simulated":
      return { measurement: v.claims.measurement };
    default:
      return undefined;
  }
}

function measurementChecks(
  policy: TrustPolicy,
  v: VerificationResult,
  rims: readonly NvidiaReferenceMeasurements[] | undefined,
): CheckResult[] {
  if (v.kind === "nvidia") return nvidiaMeasurementChecks(policy, v, rims ?? []);
  const check = named("policy.measurement");
  if (v.kind === "insecure") return [check(skip("insecure evidence has no meaningful measurement"))];
  const where = `${v.kind}.reference_values`;
  const list = policy[v.kind].reference_values as Record<string, unknown>[];
  if (list.length === 0) {
    return [check(skip(`no reference values in the policy (${where}): any measurement is accepted`))];
  }
  const fields = referenceFields(v) ?? {};
  const missing = new Set<string>();
  for (const ref of list) {
    const names = Object.keys(ref).filter((k) => ref[k] !== undefined);
    const lacks = names.filter((k) => fields[k] === undefined);
    lacks.forEach((k) => missing.add(k));
    if (lacks.length === 0 && names.every((k) => fields[k].toLowerCase() === String(ref[k]).toLowerCase())) {
      return [check(pass(`matches a reference entry of ${where} on ${names.join(", ")}`))];
    }
  }
  const extra = missing.size ? ` (the evidence lacks ${[...missing].join(", ")})` : "";
  return [check(fail(`matches none of the ${list.length} entries of ${where}${extra}`))];
}

/**
 * NVIDIA: the policy's measurements by SPDM index, and the reference values of RIMs when given
 * (their versions must be the GPU's, their golden values must match, and they should be signed).
 */
function nvidiaMeasurementChecks(
  policy: TrustPolicy,
  v: NvidiaVerification,
  rims: readonly NvidiaReferenceMeasurements[],
): CheckResult[] {
  const have = v.claims.measurements;
  const refs = Object.entries(policy.nvidia.reference_measurements);
  const problems: string[] = [];
  const matched: string[] = [];
  if (refs.length) {
    const bad = refs.filter(
      ([index, allowed]) => have[index] === undefined || !allowed.includes(have[index]),
    );
    if (bad.length)
      problems.push(`measurement index(es) ${bad.map(([i]) => i).join(", ")} match no reference value`);
    else matched.push(`${refs.length} measurement index(es) match nvidia.reference_measurements`);
  }
  const out: CheckResult[] = [];
  if (rims.length) {
    out.push(named("policy.rim_versions")(rimVersionCheck(v, rims)));
    const blocks = Object.entries(have).map(([index, value]) => ({
      index: Number(index),
      value: new Uint8Array(Buffer.from(value, "hex")),
    }));
    const nvdec = v.claims.nvdec0Status === "disabled" ? NVDEC_DISABLED : undefined;
    const outcome = compareMeasurements(blocks, rims, nvdec);
    if (!outcome.ok) problems.push(outcome.reason);
    else {
      const note = outcome.skippedNvdec ? " (index 36 skipped: NVDEC0 disabled)" : "";
      matched.push(`${outcome.compared} active RIM reference measurements match${note}`);
    }
  }
  out.push(
    named("policy.measurement")(
      problems.length
        ? fail(problems.join("; "))
        : matched.length
          ? pass(matched.join("; "))
          : skip(
              "no reference measurements in the policy (nvidia.reference_measurements) and no RIM: any firmware is accepted",
            ),
    ),
  );
  if (rims.length) {
    const unsigned = rims.filter((r) => !r.authenticated).map((r) => r.component);
    out.push(
      named("policy.rim_authenticity")(
        unsigned.length
          ? skip(`${unsigned.join(" and ")} reference values supplied without a verified RIM signature`)
          : pass("reference values come from RIMs whose signature and chain verified"),
      ),
    );
  }
  return out;
}

function rimVersionCheck(v: NvidiaVerification, rims: readonly NvidiaReferenceMeasurements[]): Outcome {
  const wrong = rims.flatMap((ref) => {
    if (ref.version === undefined) return [];
    const actual = ref.component === "vbios" ? v.claims.vbiosVersion : v.claims.driverVersion;
    return actual?.toLowerCase() === ref.version.toLowerCase() ? [] : [ref.component];
  });
  return wrong.length
    ? fail(`reference ${wrong.join(" and ")} version does not match the report`)
    : pass("reference versions match the report");
}

/** The checks only one kind has. */
function kindChecks(policy: TrustPolicy, v: VerificationResult): CheckResult[] {
  switch (v.kind) {
    case "snp":
      return snpChecks(policy, v);
    case "tdx":
      return [
        named("policy.min_tcb")(teeTcbSvnCheck(policy, v)),
        named("policy.tcb_status")(tcbStatusCheck(policy, v)),
      ];
    case "sgx":
      return [
        named("policy.min_isv_svn")(isvSvnCheck(policy, v)),
        named("policy.tcb_status")(tcbStatusCheck(policy, v)),
      ];
    case "nvidia":
      return firmwareVersionChecks(policy, v);
    default:
      return [];
  }
}

const HOST_REQUESTED_VMPL = 0xffffffff;

function snpChecks(policy: TrustPolicy, v: SnpVerification): CheckResult[] {
  const c = v.claims;
  const out: CheckResult[] = [];
  const products = policy.snp.allowed_products;
  out.push(
    named("policy.product")(
      !products
        ? skip("no product allow-list in the policy (snp.allowed_products)")
        : c.product && products.includes(c.product)
          ? pass(`${c.product} is in snp.allowed_products`)
          : fail(`${c.product ?? "an unknown product"} is not in snp.allowed_products`),
    ),
  );
  const vmpls = policy.snp.allowed_vmpls;
  out.push(
    named("policy.vmpl")(
      c.vmpl === HOST_REQUESTED_VMPL
        ? fail("report was requested by the host, not by the guest")
        : !vmpls
          ? c.vmpl <= 3
            ? pass(`VMPL ${c.vmpl} <= 3`)
            : fail(`VMPL ${c.vmpl} > 3`)
          : vmpls.includes(c.vmpl)
            ? pass(`VMPL ${c.vmpl} is in snp.allowed_vmpls`)
            : fail(`VMPL ${c.vmpl} is not in snp.allowed_vmpls`),
    ),
  );
  out.push(named("policy.min_tcb")(snpMinTcbCheck(policy, c.reportedTcb)));
  const minSvn = policy.snp.min_guest_svn;
  if (minSvn !== undefined) {
    out.push(
      named("policy.min_guest_svn")(
        c.guestSvn >= minSvn
          ? pass(`GUEST_SVN ${c.guestSvn} >= ${minSvn}`)
          : fail(`GUEST_SVN ${c.guestSvn} < ${minSvn}`),
      ),
    );
  }
  return out;
}

function snpMinTcbCheck(policy: TrustPolicy, t: SnpTcb): Outcome {
  const min = policy.snp.min_tcb;
  if (!min) return skip("no minimum TCB in the policy (snp.min_tcb)");
  // fmc is part of the TCB only from Turin on.
  const keys = (["bootloader", "tee", "snp", "microcode", "fmc"] as const).filter((k) => t[k] !== undefined);
  const low = keys.filter((k) => (t[k] ?? 0) < min[k]);
  const fmc = t.fmc !== undefined ? ` fmc ${t.fmc}` : "";
  return low.length
    ? fail(`REPORTED_TCB below snp.min_tcb in ${low.join(", ")}`)
    : pass(
        `REPORTED_TCB (bl ${t.bootloader} tee ${t.tee} snp ${t.snp} ucode ${t.microcode}${fmc}) meets snp.min_tcb`,
      );
}

function teeTcbSvnCheck(policy: TrustPolicy, v: TdxVerification): Outcome {
  if (!policy.tdx.min_tee_tcb_svn) return skip("no minimum TEE_TCB_SVN in the policy (tdx.min_tee_tcb_svn)");
  const min = Buffer.from(policy.tdx.min_tee_tcb_svn, "hex");
  const have = Buffer.from(v.claims.teeTcbSvn, "hex");
  const low = [...min.keys()].filter((i) => have[i] < min[i]);
  return low.length
    ? fail(`TEE_TCB_SVN component(s) ${low.join(", ")} below tdx.min_tee_tcb_svn`)
    : pass("TEE_TCB_SVN meets tdx.min_tee_tcb_svn component-wise");
}

function isvSvnCheck(policy: TrustPolicy, v: SgxVerification): Outcome {
  const min = policy.sgx.min_isv_svn;
  if (min === undefined) return skip("no minimum ISVSVN in the policy (sgx.min_isv_svn)");
  const svn = v.claims.isvSvn;
  return svn >= min ? pass(`ISVSVN ${svn} >= ${min}`) : fail(`ISVSVN ${svn} < ${min}`);
}

/** Intel's TCB status, as the verifier derived it from the signed TCB info, against the policy. */
function tcbStatusCheck(policy: TrustPolicy, v: TdxVerification | SgxVerification): Outcome {
  const accepted = policy.accepted_tcb_statuses as string[];
  const status = v.claims.tcbStatus;
  if (status === undefined) {
    return fail(
      "no TCB status was established from Intel collateral (see tcb-status): the platform could be out of date or revoked",
    );
  }
  return accepted.includes(status)
    ? pass(`${status} is in accepted_tcb_statuses`)
    : fail(`${status} is not in accepted_tcb_statuses [${accepted.join(", ")}]`);
}

function firmwareVersionChecks(policy: TrustPolicy, v: NvidiaVerification): CheckResult[] {
  const { driver_versions: drivers, vbios_versions: vbioses } = policy.nvidia;
  if (!drivers && !vbioses) return [];
  const bad: string[] = [];
  if (drivers && !drivers.includes(v.claims.driverVersion ?? "")) bad.push("driver");
  const vbios = v.claims.vbiosVersion?.toLowerCase() ?? "";
  if (vbioses && !vbioses.some((x) => x.toLowerCase() === vbios)) bad.push("VBIOS");
  return [
    named("policy.firmware_versions")(
      bad.length
        ? fail(`${bad.join(" and ")} version not in nvidia.driver_versions / nvidia.vbios_versions`)
        : pass("driver and VBIOS versions allowed"),
    ),
  ];
}

/** Does the report data carry the expected binding? Redeems the nonce when an issuer is given. */
function bindingCheck(
  kind: EvidenceKind,
  reportData: Uint8Array | undefined,
  options: ValidateOptions,
): { outcome: Outcome; issuedAt?: Date } {
  const field = BINDING_FIELD[kind];
  let expected: Uint8Array | undefined;
  let issuedAt: Date | undefined;
  let what = "";
  if (options.binding) {
    try {
      if (options.nonceIssuer) issuedAt = options.nonceIssuer.redeem(options.binding.nonce).issuedAt;
    } catch (err) {
      if (err instanceof EnclaveError) return { outcome: fail(`${err.code}: ${err.message}`) };
      throw err;
    }
    try {
      expected = bindReportData(
        options.binding.nonce,
        options.binding.publicKey,
        options.binding.runtimeMeasurement,
      );
    } catch (err) {
      if (err instanceof EnclaveError) return { outcome: fail(err.message) };
      throw err;
    }
    const parts = options.binding.runtimeMeasurement
      ? "nonce || runtime measurement || node key"
      : "nonce || node key";
    what = `SHA-512(domain || ${parts})${options.nonceIssuer ? " with a live, first-use nonce" : ""}`;
  } else if (options.expectedReportData) {
    const e = options.expectedReportData;
    if (!(e instanceof Uint8Array) || e.length !== REPORT_DATA_BYTES) {
      throw new ValidationError("appraisal options", [
        { path: "expectedReportData", rule: "must be 64 bytes" },
      ]);
    }
    expected = e;
    what = "the expected report data";
  }
  if (!expected) {
    const detail = `no nonce binding was given: the ${field.field} field cannot be checked and the evidence could be a replay`;
    return { outcome: options.requireFreshness === false ? skip(detail) : fail(detail) };
  }
  const part = field.bytes === REPORT_DATA_BYTES ? "" : ` (first ${field.bytes} bytes)`;
  const outcome = reportDataMatches(kind, reportData, expected)
    ? pass(`${field.field} equals ${what}${part}`)
    : fail(`${field.field} does not equal ${what}${part}`);
  return { outcome, issuedAt };
}

/** A timestamp inside the signed evidence (Nitro, simulated); SNP, TDX, SGX and NVIDIA have none. */
function signedTime(v: VerificationResult): Date | undefined {
  if (v.kind === "nitro") return new Date(v.claims.timestampMs);
  if (v.kind === "simulated" || v.kind === "insecure") return new Date(v.claims.timestamp);
  return undefined;
}

/**
 * Evidence age: from the signed timestamp when the evidence has one, else from when the nonce it
 * binds was issued (it cannot predate its challenge). Evidence with neither has no provable age.
 */
function ageCheck(policy: TrustPolicy, at: Date, v: VerificationResult, nonceIssuedAt?: Date): Outcome {
  const max = policy.max_evidence_age_seconds;
  const signed = signedTime(v);
  const origin = signed ?? nonceIssuedAt;
  const source = signed ? "signed timestamp" : "nonce issue time";
  if (!origin) return skip("no signed timestamp and no nonce: the evidence's age cannot be established");
  const ageS = (at.getTime() - origin.getTime()) / 1000;
  // Clocks differ a little between an enclave and its verifier; a larger lead is suspicious.
  if (ageS < -60) return fail(`${source} is ${Math.round(-ageS)} s in the future`);
  return ageS <= max
    ? pass(`${Math.max(0, Math.round(ageS))} s old by its ${source} (max_evidence_age_seconds ${max})`)
    : fail(`${Math.round(ageS)} s old by its ${source}, older than max_evidence_age_seconds ${max}`);
}
