import { createHash } from "node:crypto";
import type { CoordinatorEvent, CoordinatorEventListener } from "../coordinator/events.js";
import type { Identity } from "../identity/certificates.js";
import type { Baseline } from "../coordinator/job-setup.js";
import type { FederationJob } from "../schemas/federation.js";
import type { AuditChain } from "./chain.js";
import { canonicalJson } from "./entry.js";
import type { AuditPayload } from "./kinds.js";

/** A certificate identity as an entry's actor. */
export const actorOf = (who: Identity): string => `${who.role}/${who.name}`;

/** The hash of a job as submitted: SHA-256 over its canonical JSON. */
export function jobSha256(job: FederationJob): string {
  return createHash("sha256").update(canonicalJson(job)).digest("hex");
}

const CODE = /^([A-Z][A-Z0-9_]{1,63}):/;

/** An exclusion's reason as a stable code: the error's own, or one named after the state. */
function reasonCode(state: "budget_exhausted" | "untrusted" | "failed" | "dropped", reason: string): string {
  const m = CODE.exec(reason);
  if (m) return m[1];
  return state === "untrusted"
    ? "ATTESTATION_UNTRUSTED"
    : state === "budget_exhausted"
      ? "BUDGET_EXHAUSTED"
      : "AGENT_FAILED";
}

const finite = (x: number) => (Number.isFinite(x) ? x : undefined);

/** An approval or revocation made at the project CA, with who made it (`admin/<name>` or `ca/<project>`). */
export interface CaAction {
  action: "approve" | "revoke";
  serial: string;
  participant?: string;
  role?: "site" | "admin";
  actor: string;
}

interface JobTrack {
  strategy: string;
  mechanism: string;
  model: string;
  delta?: number;
}

/**
 * Writes the coordinator's audit chain from its events and from admin actions: a listener on
 * `runFederation` (awaited, so each entry is committed before the job goes on) and the calls the
 * host API makes for submit and abort. The head is signed at every round end, job end and admin
 * action. Only ids, hashes, numbers and codes are taken from the events; free text stays out.
 */
export class CoordinatorAuditor {
  private readonly jobs = new Map<string, JobTrack>();
  private recordedCa: Set<string> | null = null;
  private caQueue: Promise<unknown> = Promise.resolve();

  constructor(readonly chain: AuditChain) {}

  readonly listener: CoordinatorEventListener = (e) => this.record(e);

  async record(e: CoordinatorEvent): Promise<void> {
    const job = e.job_id;
    switch (e.type) {
      case "job_started": {
        this.jobs.set(job, {
          strategy: e.strategy,
          mechanism: e.mechanism,
          model: e.model_sha256,
          delta: e.delta,
        });
        await this.chain.append("job_started", {
          job_id: job,
          sites: e.clients.length,
          rounds: e.rounds,
          min_clients: e.min_clients,
          strategy: e.strategy,
          mechanism: e.mechanism,
          model_sha256: e.model_sha256,
          target_epsilon: e.target_epsilon,
          delta: e.delta,
        });
        return;
      }
      case "client_attested":
        await this.chain.append("attestation_verdict", {
          job_id: job,
          round: e.round,
          site: e.client_id,
          evidence_kind: e.hardware_type,
          measurement: e.measurement_hash,
          tcb: e.tcb,
          tcb_status: e.tcb_status as AuditPayload<"attestation_verdict">["tcb_status"],
          verdict: e.status,
          reason: e.status === "TRUSTED" ? "POLICY_PASSED" : "POLICY_REFUSED",
          failed_check: e.status === "TRUSTED" ? undefined : e.failed_check,
        });
        return;
      case "client_invited":
        await this.chain.append("model_sent", {
          job_id: job,
          round: e.round,
          site: e.client_id,
          model_sha256: this.track(job).model,
        });
        return;
      case "client_reported":
        await this.reported(e);
        return;
      case "client_excluded":
        await this.chain.append("update_rejected", {
          job_id: job,
          round: e.round,
          site: e.client_id,
          state: e.state,
          reason: reasonCode(e.state, e.reason),
        });
        return;
      case "round_completed": {
        const t = this.track(job);
        t.model = e.model_sha256;
        await this.chain.append("round_aggregated", {
          job_id: job,
          round: e.round,
          strategy: t.strategy,
          model_sha256: e.model_sha256,
          sites: e.record.clients.length,
          examples: e.record.examples,
          accuracy: finite(e.record.accuracy),
          loss: finite(e.record.loss),
          seconds: e.record.seconds,
        });
        await this.chain.signHead("round_end");
        return;
      }
      case "job_finished":
        await this.chain.append("job_finished", {
          job_id: job,
          status: e.status,
          rounds_completed: e.rounds_completed,
          model_sha256: e.model_sha256,
        });
        await this.chain.signHead("job_end");
        this.jobs.delete(job);
        return;
      case "round_started":
        return; // the model each site is sent is recorded per site, at its invitation
    }
  }

  private async reported(e: Extract<CoordinatorEvent, { type: "client_reported" }>): Promise<void> {
    const t = this.track(e.job_id);
    const at = { job_id: e.job_id, round: e.round, site: e.client_id };
    await this.chain.append("update_received", {
      ...at,
      update_sha256: e.update_sha256,
      examples: e.examples,
      steps: e.steps,
    });
    await this.chain.append("budget_spent", {
      ...at,
      epsilon_before: e.epsilon_before,
      epsilon_after: e.epsilon,
      delta: t.delta,
      accountant: t.mechanism === "DP_FEDAVG" ? "client_level" : undefined,
    });
  }

  private track(job: string): JobTrack {
    let t = this.jobs.get(job);
    if (!t) {
      t = { strategy: "UNKNOWN", mechanism: "DP_SGD", model: "0".repeat(64) };
      this.jobs.set(job, t);
    }
    return t;
  }

  /** The job's non-private baseline, trained by the coordinator on data it may pool. */
  async baseline(job: FederationJob, b: Baseline): Promise<void> {
    const accuracy = finite(b.accuracy);
    const loss = finite(b.loss);
    if (accuracy === undefined || loss === undefined) return;
    await this.chain.append("baseline_measured", {
      job_id: job.job_id,
      accuracy,
      loss,
      examples: b.examples,
      epochs: b.epochs,
    });
  }

  /** An admin submitted a job (recorded before the job is queued). */
  async submitted(job: FederationJob, by: Identity): Promise<void> {
    const payload: AuditPayload<"job_submitted"> = {
      job_id: job.job_id,
      job_sha256: jobSha256(job),
      sites: job.clients.length,
      rounds: job.rounds,
      min_clients: job.min_clients,
      strategy: job.strategy,
      mechanism: job.privacy.mechanism,
      target_epsilon: job.privacy.target_epsilon,
      delta: job.privacy.delta,
    };
    await this.chain.append("job_submitted", payload, actorOf(by));
    await this.chain.signHead("admin_action");
  }

  /**
   * Approvals and revocations made at the project CA, as the coordinator learns of them (the
   * CA-signed admin action log and the revocation list, re-read at start and when they change):
   * each (action, serial) is recorded once across restarts, with the actor the record names (the
   * approving admin's certificate identity, or the CA). Calls run one after another, so a
   * revocation the log names is recorded with its admin before the bare list can record it.
   */
  adminActions(actions: readonly CaAction[]): Promise<void> {
    const run = this.caQueue.then(() => this.recordCaActions(actions));
    this.caQueue = run.catch(() => undefined);
    return run;
  }

  /** Serials the CA's revocation list holds, recorded as revocations by `actor` where not yet. */
  revoked(serials: readonly string[], actor: string): Promise<void> {
    return this.adminActions(serials.map((serial) => ({ action: "revoke", serial, actor })));
  }

  private async recordCaActions(actions: readonly CaAction[]): Promise<void> {
    this.recordedCa ??= new Set(
      (await this.chain.payloadsOf("admin_action")).flatMap((p) =>
        p.action !== "abort" && p.serial ? [`${p.action}:${p.serial}`] : [],
      ),
    );
    let added = false;
    for (const a of actions) {
      const key = `${a.action}:${a.serial}`;
      if (this.recordedCa.has(key)) continue;
      const { action, serial, participant, role } = a;
      await this.chain.append("admin_action", { action, serial, participant, role }, a.actor);
      this.recordedCa.add(key);
      added = true;
    }
    if (added) await this.chain.signHead("admin_action");
  }

  /** An admin action: abort (a job), approve or revoke (a certificate serial). */
  async action(
    action: AuditPayload<"admin_action">["action"],
    target: { job_id?: string; serial?: string },
    actor: string,
  ): Promise<void> {
    await this.chain.append("admin_action", { action, ...target }, actor);
    await this.chain.signHead("admin_action");
  }
}

/**
 * The coordinator's event listener: each event is committed to the audit chain first (write-ahead),
 * then handed to the other consumers (the job directory, the console), in order.
 */
export function auditFirst(
  auditor: CoordinatorAuditor,
  ...next: ((e: CoordinatorEvent) => void | Promise<void>)[]
): CoordinatorEventListener {
  return async (e) => {
    await auditor.record(e);
    for (const n of next) await n(e);
  };
}
