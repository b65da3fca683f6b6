import { createHash } from "node:crypto";
import { EnclaveError, ValidationError } from "../errors.js";
import { AttestationReport } from "../schemas/attestation.js";
import { parseContract } from "../schemas/contract.js";
import type { TrustPolicy } from "../schemas/trust-policy.js";
import { allPassed } from "./checks.js";
import { bindReportData, BINDING_FIELD, reportDataMatches, REPORT_DATA_BYTES } from "./binding.js";
import { HARDWARE_TYPE, isHardwareKind, type Evidence } from "./evidence.js";
import { detectEvidenceKind } from "./evidence-kind.js";
import type { NonceIssuer } from "./nonce.js";
import {
  ageCheck,
  debugCheck,
  kindCheck,
  measurementCheck,
  runtimeCheck,
  tcbChecks,
} from "./policy/evaluate.js";
import type { PolicyFacts } from "./policy/facts.js";
import { defaultTrustPolicy } from "./policy/load.js";
import { VERIFIERS } from "./registry.js";
import {
  AttestationError,
  EvidenceFormatError,
  type CheckResult,
  type EvidenceKind,
  type VerificationResult,
} from "./types.js";

export interface AppraiseOptions {
  /** Trust policy (already validated); the default policy when omitted. */
  policy?: TrustPolicy;
  /** Validation time for certificates, collateral and age. Default: now. */
  at?: Date;
  /** Route to this kind's verifier instead of detecting the kind from the bytes. */
  kind?: EvidenceKind;
  /**
   * The coordinator's challenge and the node key it expects bound into the report data, and the
   * isolated runtime's measurement the agent claims (bound with them; the policy may pin it).
   */
  binding?: { nonce: Uint8Array; publicKey: Uint8Array; runtimeMeasurement?: Uint8Array };
  /** Redeems `binding.nonce` (single use, unexpired) and dates the evidence by its issue time. */
  nonceIssuer?: NonceIssuer;
  /** Alternatively, the 64 bytes the report data must carry. */
  expectedReportData?: Uint8Array;
  /**
   * Fail (rather than skip) freshness when neither `binding` nor `expectedReportData` is given.
   * Default true: an unbound report can be a replay. Offline inspection (`enclave verify`) sets false.
   */
  requireFreshness?: boolean;
  /** DER certificates in addition to those carried with the evidence (VCEK/VLEK, GPU chain). */
  certificates?: Uint8Array[];
  /** Intel collateral JSON (SGX/TDX). */
  collateral?: unknown;
  /** The specification's node_id for the report (default: derived from the node key or evidence). */
  nodeId?: string;
}

export interface Appraisal {
  trusted: boolean;
  kind: EvidenceKind;
  /** What identified the kind ("--kind" or the detected format). */
  kindSource: string;
  /** Vendor checks followed by the policy's, with the vendor verifier's claims. */
  result: VerificationResult;
  /** The specification's AttestationReport (status TRUSTED only when `trusted`). */
  report: AttestationReport;
  /** When a TRUSTED appraisal stops standing (at + reattest_interval_seconds). */
  validUntil?: Date;
}

const sha256hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function errorCheck(err: EnclaveError): CheckResult {
  const name =
    err instanceof EvidenceFormatError
      ? "format"
      : err instanceof ValidationError
        ? "inputs"
        : ((err as AttestationError).check ?? "verification");
  return { name, status: "fail", detail: err.message };
}

/**
 * Verify evidence with its kind's vendor verifier, then apply the trust policy: allowed kind and
 * label, debug, measurement allow-lists, minimum TCB, TCB status, nonce/key binding and age.
 * TRUSTED only when every check that ran passed. Malformed evidence yields an UNTRUSTED appraisal
 * with a "format" check; only unrecognisable bytes (no kind given) throw.
 */
export async function appraiseEvidence(
  evidence: Evidence | Uint8Array,
  options: AppraiseOptions = {},
): Promise<Appraisal> {
  const policy = options.policy ?? defaultTrustPolicy();
  const at = options.at ?? new Date();
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) {
    throw new ValidationError("appraisal options", [{ path: "at", rule: "must be a valid Date" }]);
  }
  const bytes = evidence instanceof Uint8Array ? evidence : evidence.bytes;
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
    throw new ValidationError("appraisal options", [{ path: "evidence", rule: "must be non-empty bytes" }]);
  }
  let kind: EvidenceKind;
  let kindSource: string;
  if (options.kind) {
    if (!(options.kind in VERIFIERS)) {
      throw new ValidationError("appraisal options", [
        { path: "kind", rule: `must be one of ${Object.keys(VERIFIERS).join(", ")}` },
      ]);
    }
    kind = options.kind;
    kindSource = "given";
  } else {
    const guess = detectEvidenceKind(bytes);
    kind = guess.kind;
    kindSource = guess.reason;
  }
  const entry = VERIFIERS[kind];
  const preChecks: CheckResult[] = [];
  if (!(evidence instanceof Uint8Array) && evidence.kind !== kind) {
    preChecks.push({
      name: "kind-consistency",
      status: "fail",
      detail: `the evidence was labelled ${evidence.kind} but its bytes are ${kind}`,
    });
  }
  if (!(evidence instanceof Uint8Array)) {
    const label = isHardwareKind(kind) ? "HARDWARE" : kind === "simulated" ? "SIMULATED" : "INSECURE";
    if (evidence.label !== label) {
      preChecks.push({
        name: "label-consistency",
        status: "fail",
        detail: `the collector labelled the evidence ${String(evidence.label).slice(0, 16)}, but ${kind} evidence is ${label}`,
      });
    }
  }

  const carried =
    evidence instanceof Uint8Array
      ? []
      : (evidence.certificates ?? []).filter((c) => c.role !== "CRL").map((c) => c.der);
  const certificates = [...carried, ...(options.certificates ?? [])];

  let vendor: VerificationResult;
  let facts: PolicyFacts | undefined;
  try {
    vendor = entry.verify(bytes, { at, policy, certificates, collateral: options.collateral });
    facts = entry.facts(vendor, bytes);
  } catch (err) {
    if (!(err instanceof EnclaveError)) throw err;
    vendor = { kind, trusted: false, checks: [errorCheck(err)], claims: {}, measurement: "", debug: false };
  }
  const vendorChecks = vendor.checks.filter(
    (c) => !(c.status === "skipped" && entry.superseded.includes(c.name)),
  );

  const policyChecks: CheckResult[] = [kindCheck(policy, kind)];
  if (facts) {
    if (!entry.native.includes("policy.debug")) policyChecks.push(debugCheck(policy, kind, vendor.debug));
    policyChecks.push(measurementCheck(policy, kind, facts));
    policyChecks.push(...tcbChecks(policy, kind, facts).filter((c) => !entry.native.includes(c.name)));
  }
  const fresh = freshnessCheck(kind, vendor, options);
  policyChecks.push(fresh.check);
  const runtime = options.binding?.runtimeMeasurement;
  policyChecks.push(runtimeCheck(policy, runtime && Buffer.from(runtime).toString("hex")));
  if (facts) policyChecks.push(ageCheck(policy, at, facts, fresh.nonceIssuedAt));

  const checks = [...preChecks, ...vendorChecks, ...policyChecks];
  // The verifier's verdict (its own checks by the one rule), then the same rule over everything.
  const trusted = vendor.trusted && allPassed(checks);

  const result: VerificationResult = { ...vendor, kind, trusted, checks };
  // A claim the evidence vouches for only through the binding (policy.binding passed or not).
  if (runtime)
    result.claims = { ...vendor.claims, runtime_measurement: Buffer.from(runtime).toString("hex") };
  const report = parseContract(
    AttestationReport,
    {
      node_id: nodeIdOf(options, bytes),
      hardware_type: facts?.hardwareType ?? HARDWARE_TYPE[kind],
      enclave_signature: facts?.signature || "unavailable",
      measurement_hash: vendor.measurement || "unavailable",
      status: trusted ? "TRUSTED" : "UNTRUSTED",
    },
    "AttestationReport",
  );
  const appraisal: Appraisal = { trusted, kind, kindSource, result, report };
  if (trusted) appraisal.validUntil = new Date(at.getTime() + policy.reattest_interval_seconds * 1000);
  return appraisal;
}

function nodeIdOf(options: AppraiseOptions, bytes: Uint8Array): string {
  if (options.nodeId !== undefined) {
    if (typeof options.nodeId !== "string" || options.nodeId.length === 0 || options.nodeId.length > 256) {
      throw new ValidationError("appraisal options", [
        { path: "nodeId", rule: "must be a string of 1..256 characters" },
      ]);
    }
    return options.nodeId;
  }
  if (options.binding) return `key-sha256:${sha256hex(options.binding.publicKey).slice(0, 32)}`;
  return `evidence-sha256:${sha256hex(bytes).slice(0, 32)}`;
}

/** Does the report data carry the expected binding? Redeems the nonce when an issuer is given. */
function freshnessCheck(
  kind: EvidenceKind,
  vendor: VerificationResult,
  options: AppraiseOptions,
): { check: CheckResult; nonceIssuedAt?: Date } {
  const name = "policy.binding";
  const field = BINDING_FIELD[kind];
  let expected: Uint8Array | undefined;
  let nonceIssuedAt: Date | undefined;
  let what = "";
  if (options.binding) {
    if (options.nonceIssuer) {
      try {
        nonceIssuedAt = options.nonceIssuer.redeem(options.binding.nonce).issuedAt;
      } catch (err) {
        if (err instanceof EnclaveError)
          return { check: { name, status: "fail", detail: `${err.code}: ${err.message}` } };
        throw err;
      }
    }
    try {
      expected = bindReportData(
        options.binding.nonce,
        options.binding.publicKey,
        options.binding.runtimeMeasurement,
      );
    } catch (err) {
      if (err instanceof EnclaveError) return { check: { name, status: "fail", detail: err.message } };
      throw err;
    }
    const parts = options.binding.runtimeMeasurement
      ? "nonce || runtime measurement || node key"
      : "nonce || node key";
    what = `SHA-512(domain || ${parts})${options.nonceIssuer ? " with a live, first-use nonce" : ""}`;
  } else if (options.expectedReportData) {
    if (
      !(options.expectedReportData instanceof Uint8Array) ||
      options.expectedReportData.length !== REPORT_DATA_BYTES
    ) {
      throw new ValidationError("appraisal options", [
        { path: "expectedReportData", rule: "must be 64 bytes" },
      ]);
    }
    expected = options.expectedReportData;
    what = "the expected report data";
  }
  if (!expected) {
    const detail = `no nonce binding was given: the ${field.field} field cannot be checked and the evidence could be a replay`;
    return { check: { name, status: options.requireFreshness === false ? "skipped" : "fail", detail } };
  }
  const ok = reportDataMatches(kind, vendor.reportData, expected);
  const part = field.bytes === REPORT_DATA_BYTES ? "" : ` (first ${field.bytes} bytes)`;
  return {
    check: ok
      ? { name, status: "pass", detail: `${field.field} equals ${what}${part}` }
      : { name, status: "fail", detail: `${field.field} does not equal ${what}${part}` },
    nonceIssuedAt,
  };
}
