import { createHash } from "node:crypto";
import { EnclaveError, ValidationError } from "../errors.js";
import { AttestationReport } from "../schemas/attestation.js";
import { parseContract } from "../schemas/contract.js";
import type { TrustPolicy } from "../schemas/trust-policy.js";
import { allPassed } from "./checks.js";
import { HARDWARE_TYPE, isHardwareKind, type Evidence } from "./evidence.js";
import { detectEvidenceKind } from "./evidence-kind.js";
import { defaultTrustPolicy } from "./policy/load.js";
import { validateEvidence, type ValidateOptions } from "./policy/validate.js";
import { VERIFIERS } from "./registry.js";
import {
  AttestationError,
  EvidenceFormatError,
  type CheckResult,
  type EvidenceKind,
  type Verification,
  type VerificationResult,
} from "./types.js";

export interface AppraiseOptions extends Omit<ValidateOptions, "at"> {
  /** Trust policy (already validated); the default policy when omitted. */
  policy?: TrustPolicy;
  /** Validation time for certificates, collateral and age. Default: now. */
  at?: Date;
  /** Route to this kind's verifier instead of detecting the kind from the bytes. */
  kind?: EvidenceKind;
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
  /** The verifier's checks followed by the policy's, with the verifier's typed claims. */
  result: VerificationResult | UnreadEvidence;
  /** The specification's AttestationReport (status TRUSTED only when `trusted`). */
  report: AttestationReport;
  /** When a TRUSTED appraisal stops standing (at + reattest_interval_seconds). */
  validUntil?: Date;
  /**
   * Hex of the isolated runtime's measurement the agent claimed: vouched for only through the
   * binding (policy.binding), and judged by policy.runtime_measurement; not a vendor claim.
   */
  runtimeMeasurement?: string;
}

/** Evidence whose bytes could not be read as their kind: one failed check, no claims. */
export type UnreadEvidence = Verification<EvidenceKind, Record<string, never>> & { unread: true };

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
 * Authenticate evidence with its kind's verifier, then validate its typed claims against the trust
 * policy (allowed kind and label, debug, measurement allow-lists, minimum TCB, TCB status,
 * nonce/key binding and age: see policy/validate.ts). TRUSTED only when every check that ran
 * passed. Malformed evidence yields an UNTRUSTED appraisal with a "format" check; only
 * unrecognisable bytes (no kind given) throw.
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

  let verified: VerificationResult | undefined;
  let failure: CheckResult | undefined;
  try {
    verified = VERIFIERS[kind](bytes, { at, certificates, collateral: options.collateral });
  } catch (err) {
    if (!(err instanceof EnclaveError)) throw err;
    failure = errorCheck(err);
  }
  const policyChecks = validateEvidence(kind, verified, policy, { ...options, at });
  const checks = [...preChecks, ...(verified?.checks ?? [failure!]), ...policyChecks];
  // The verifier's verdict (its own checks by the one rule), then the same rule over everything.
  const trusted = (verified?.trusted ?? false) && allPassed(checks);

  const result: VerificationResult | UnreadEvidence = verified
    ? { ...verified, trusted, checks }
    : { kind, trusted, checks, claims: {}, measurement: "", debug: false, unread: true };
  const report = parseContract(
    AttestationReport,
    {
      node_id: nodeIdOf(options, bytes),
      hardware_type: HARDWARE_TYPE[kind],
      enclave_signature: result.signature || "unavailable",
      measurement_hash: result.measurement || "unavailable",
      status: trusted ? "TRUSTED" : "UNTRUSTED",
    },
    "AttestationReport",
  );
  const appraisal: Appraisal = { trusted, kind, kindSource, result, report };
  const runtime = options.binding?.runtimeMeasurement;
  if (runtime) appraisal.runtimeMeasurement = Buffer.from(runtime).toString("hex");
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
