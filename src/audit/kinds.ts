import { z } from "zod";
import { CHECK_NAME, TCB_SUMMARY } from "../attestation/appraisal-facts.js";
import { TCB_STATUSES } from "../attestation/dcap/tcb-status.js";
import { HardwareType, AttestationStatus } from "../schemas/attestation.js";
import { ClientId, MAX_ROUNDS } from "../schemas/federation.js";
import { PrivacyMechanism } from "../schemas/privacy.js";
import { AuditError } from "./errors.js";

// Field types: identifiers, fixed-length hex, numbers and enums. Nothing here admits free text, so
// a data value cannot be written into an entry: it would have to be one of these shapes.

/** SHA-256, lowercase hex. */
export const Sha256 = z.string().regex(/^[0-9a-f]{64}$/);
/** A launch measurement (32 to 64 bytes, lowercase hex) or `unavailable`. */
const Measurement = z.string().regex(/^(?:(?:[0-9a-f]{2}){32,64}|unavailable)$/);
/** TCB values as `name=value` pairs (`bootloader=3,tee=0,snp=8,microcode=115`), when the kind has them. */
const Tcb = z.string().regex(TCB_SUMMARY);
/** A stable error code from one of the project's code tables (`SCREAMING_SNAKE`). */
export const Code = z.string().regex(/^[A-Z][A-Z0-9_]{1,63}$/);
/** A strategy's name (`FED_AVG`, `KRUM`, ...). */
const StrategyName = z.string().regex(/^[A-Z][A-Z0-9_]{1,31}$/);
const JobId = z.uuid();
const Site = ClientId;
const Round = z.number().int().min(0).max(MAX_ROUNDS);
const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const Epsilon = z.number().min(0).max(1e6);
const Delta = z.number().gt(0).lt(1);
const Metric = z.number().min(-1e12).max(1e12);
/** P-256 public key, SubjectPublicKeyInfo DER (91 bytes) as hex. */
export const SignerKey = z.string().regex(/^[0-9a-f]{182}$/);
/** ECDSA P-256 signature, IEEE P1363 (r || s, 64 bytes) as hex. */
const Signature = z.string().regex(/^[0-9a-f]{128}$/);

const kind = <T extends z.ZodRawShape>(shape: T) => z.strictObject(shape);

/** Every kind of entry and the only payload each may carry. */
export const AUDIT_KINDS = {
  /** The first entry: who keeps the chain and, for a signed chain, the key its heads are signed with. */
  chain_opened: kind({
    role: z.enum(["coordinator", "site"]),
    signer_key: SignerKey.optional(),
  }),
  /** A later signing key (a coordinator restarted from a new kit). */
  signer_added: kind({ signer_key: SignerKey }),
  /** The chain head (the entry before this one) signed by the chain's key. */
  head_signed: kind({
    head_seq: Count,
    head_sha256: Sha256,
    signer_sha256: Sha256,
    signature: Signature,
    cause: z.enum(["opened", "round_end", "job_end", "admin_action"]),
  }),
  job_submitted: kind({
    job_id: JobId,
    job_sha256: Sha256,
    sites: Count,
    rounds: Round,
    min_clients: Count,
    strategy: StrategyName,
    mechanism: PrivacyMechanism,
    target_epsilon: Epsilon,
    delta: Delta,
  }),
  job_started: kind({
    job_id: JobId,
    sites: Count,
    rounds: Round,
    min_clients: Count,
    strategy: StrategyName,
    mechanism: PrivacyMechanism,
    model_sha256: Sha256,
    target_epsilon: Epsilon.optional(),
    delta: Delta.optional(),
  }),
  attestation_verdict: kind({
    job_id: JobId,
    round: Round,
    site: Site,
    evidence_kind: HardwareType,
    measurement: Measurement,
    tcb: Tcb.optional(),
    /** Intel's TCB status (TDX, SGX) from its signed TCB info. */
    tcb_status: z.enum(TCB_STATUSES).optional(),
    verdict: AttestationStatus,
    reason: Code,
    /** For an untrusted verdict: the first failed check's name (`policy.min_tcb`, `signature`). */
    failed_check: z.string().regex(CHECK_NAME).optional(),
  }),
  /**
   * The non-private baseline, where the coordinator can train one (pooled data it holds: a POC's
   * bundled dataset): same model, initial weights and plan, scored on the same evaluation data.
   */
  baseline_measured: kind({
    job_id: JobId,
    accuracy: Metric,
    loss: Metric,
    examples: Count,
    epochs: Count,
  }),
  model_sent: kind({ job_id: JobId, round: Round, site: Site, model_sha256: Sha256 }),
  update_received: kind({
    job_id: JobId,
    round: Round,
    site: Site,
    update_sha256: Sha256,
    examples: Count,
    steps: Count,
  }),
  update_rejected: kind({
    job_id: JobId,
    round: Round,
    site: Site,
    state: z.enum(["budget_exhausted", "untrusted", "failed", "dropped"]),
    reason: Code,
  }),
  budget_spent: kind({
    job_id: JobId,
    round: Round,
    site: Site,
    epsilon_before: Epsilon,
    epsilon_after: Epsilon,
    delta: Delta.optional(),
    accountant: z.enum(["rdp", "prv", "client_level"]).optional(),
  }),
  round_aggregated: kind({
    job_id: JobId,
    round: Round,
    strategy: StrategyName,
    model_sha256: Sha256,
    sites: Count,
    examples: Count,
    /** Left out when the evaluation gave no finite number. */
    accuracy: Metric.optional(),
    loss: Metric.optional(),
    seconds: z.number().min(0).max(1e9),
  }),
  job_finished: kind({
    job_id: JobId,
    status: z.enum(["completed", "insufficient_clients", "privacy_budget_exhausted", "aborted", "failed"]),
    rounds_completed: Round,
    model_sha256: Sha256,
  }),
  admin_action: kind({
    action: z.enum(["approve", "revoke", "abort"]),
    job_id: JobId.optional(),
    /** A certificate's serial number (hex) for approve and revoke. */
    serial: z
      .string()
      .regex(/^[0-9a-f]{1,64}$/)
      .optional(),
    /** approve: the participant and the role its new certificate names. */
    participant: ClientId.optional(),
    role: z.enum(["site", "admin"]).optional(),
  }),
  /** Site chains: what left the site through the Airlock in one round. */
  update_released: kind({
    job_id: JobId,
    round: Round,
    update_sha256: Sha256,
    examples: Count,
    steps: Count,
    epsilon_after: Epsilon,
    delta: Delta.optional(),
  }),
  /**
   * Site chains: what an isolated round's guest did (`--isolation microvm|process`): its runtime and
   * measurement, the steps the host reserved and charged, how it ended, and the digest of what its
   * Airlock released. Written once per round that reached the guest, before any update leaves.
   */
  guest_task: kind({
    job_id: JobId,
    round: Round,
    mode: z.enum(["microvm", "process"]),
    measurement: Sha256.optional(),
    boot_ms: Count.optional(),
    steps_reserved: Count,
    steps_charged: Count,
    outcome: z.enum(["released", "failed"]),
    reason: Code.optional(),
    exit_code: z.number().int().min(-1).max(255).optional(),
    exit_signal: z
      .string()
      .regex(/^SIG[A-Z0-9]{1,12}$/)
      .optional(),
    guest_sha256: Sha256.optional(),
  }),
} as const;

export type AuditKind = keyof typeof AUDIT_KINDS;
export type AuditPayload<K extends AuditKind> = z.output<(typeof AUDIT_KINDS)[K]>;

/** The actor of an entry: `role/name` from a certificate identity (or `site/<id>` in a simulation). */
export const Actor = z.string().regex(/^(?:coordinator|site|admin|ca)\/[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/);

export function isAuditKind(kind: string): kind is AuditKind {
  return Object.hasOwn(AUDIT_KINDS, kind);
}

/**
 * Check a payload against its kind's schema. The error names the kind and the fields, never a value
 * or an unknown key (a key could carry data too).
 */
export function checkPayload<K extends AuditKind>(kind: K, payload: unknown): AuditPayload<K> {
  const r = AUDIT_KINDS[kind].safeParse(payload);
  if (r.success) return r.data as AuditPayload<K>;
  const fields = r.error.issues.map((i) =>
    i.code === "unrecognized_keys" ? "(an unknown field)" : i.path.map(String).join(".") || "(payload)",
  );
  throw new AuditError(
    "AUDIT_PAYLOAD_INVALID",
    `${kind}: ${[...new Set(fields)].join(", ")} must be an id, hex hash, number or enum of this kind`,
  );
}
