import type { CoordinatorEvent } from "../coordinator/events.js";
import type { JobCheckpoint } from "../coordinator/job-store.js";
import { FederationJob } from "../schemas/federation.js";
import { parseContract } from "../schemas/contract.js";
import { parseConfigText } from "../schemas/config-text.js";
import type { Identity } from "../identity/certificates.js";
import { HostError } from "./errors.js";

export type JobState =
  | "queued"
  | "running"
  | "completed"
  | "insufficient_clients"
  | "privacy_budget_exhausted"
  | "aborted"
  | "failed";

export interface JobView {
  job_id: string;
  status: JobState;
  rounds_completed: number;
  rounds: number;
  reason: string;
  model_sha256: string;
  submitted_at: string;
}

/**
 * The jobs the host API reports on (what an admin submits, reads, watches and aborts) and the
 * job runner works through (claim, record). A store behind it (PostgreSQL) keeps the same
 * contract: `record` is awaited before the coordinator goes on, so an event it has persisted
 * (a round's checkpoint with it) is never lost.
 */
export interface JobDirectory {
  /** `by`: the admin whose certificate made the call (the audit ledger's actor). */
  submit(job: FederationJob, by?: Identity): Promise<JobView>;
  get(jobId: string): Promise<JobView>;
  list(): Promise<JobView[]>;
  abort(jobId: string, by?: Identity): Promise<JobView>;
  /** The job's events so far, then live ones, ending after the job ends (or `signal` aborts). */
  watch(jobId: string, signal: AbortSignal): AsyncIterable<CoordinatorEvent>;
  /**
   * The job to run next, taken by this runner (no other claim returns it): one that was running
   * when the coordinator stopped (with its checkpoint, to resume from), else the oldest queued
   * one; null when there is none. Its status stays as it was until its `job_started` event
   * ("queued" while it waits for its sites).
   */
  claim(): Promise<{ job: FederationJob; resume?: JobCheckpoint } | null>;
  /**
   * One coordinator event: the job's status, rounds_completed and model hash, and its watchers.
   * `round_completed` carries the new global model: the checkpoint a store keeps.
   */
  record(event: CoordinatorEvent): Promise<void>;
}

/** A job file's text (JSON or YAML), validated by the FederationJob contract; errors name fields. */
export function parseJobText(text: string): FederationJob {
  return parseContract(FederationJob, parseConfigText(text, "job"), "FederationJob");
}

const ENDED = new Set<JobState>([
  "completed",
  "insufficient_clients",
  "privacy_budget_exhausted",
  "aborted",
  "failed",
]);

/** Events kept per job in memory (a watcher that joins late sees at most the last ones). */
const MAX_EVENTS = 10_000;

interface Entry {
  job: FederationJob;
  claimed: boolean;
  view: JobView;
  events: CoordinatorEvent[];
  listeners: Set<() => void>;
}

/**
 * Jobs in this process's memory (nothing survives a restart, so nothing resumes): the host API's
 * directory until the coordinator keeps its state in PostgreSQL.
 */
export class MemoryJobDirectory implements JobDirectory {
  private readonly jobs = new Map<string, Entry>();

  async submit(job: FederationJob): Promise<JobView> {
    if (this.jobs.has(job.job_id)) throw new HostError("JOB_EXISTS", `job ${job.job_id} exists already`);
    const view: JobView = {
      job_id: job.job_id,
      status: "queued",
      rounds_completed: 0,
      rounds: job.rounds,
      reason: "",
      model_sha256: "",
      submitted_at: new Date().toISOString(),
    };
    this.jobs.set(job.job_id, { job, claimed: false, view, events: [], listeners: new Set() });
    return { ...view };
  }

  async get(jobId: string): Promise<JobView> {
    return { ...this.entry(jobId).view };
  }

  async list(): Promise<JobView[]> {
    return [...this.jobs.values()].map((e) => ({ ...e.view })).reverse();
  }

  async abort(jobId: string): Promise<JobView> {
    const e = this.entry(jobId);
    if (!ENDED.has(e.view.status)) {
      e.view.status = "aborted";
      e.view.reason = "aborted by an admin";
      this.notify(e);
    }
    return { ...e.view };
  }

  async claim(): Promise<{ job: FederationJob } | null> {
    for (const e of this.jobs.values())
      if (e.view.status === "queued" && !e.claimed) {
        e.claimed = true;
        return { job: e.job };
      }
    return null;
  }

  async record(event: CoordinatorEvent): Promise<void> {
    const e = this.entry(event.job_id);
    // An ended job (aborted by an admin, say) keeps its status; only its final event lands.
    if (ENDED.has(e.view.status) && event.type !== "job_finished") return;
    if (event.type === "round_completed") {
      e.view.rounds_completed = event.round;
      e.view.model_sha256 = event.model_sha256;
    }
    if (event.type === "job_finished") {
      if (!ENDED.has(e.view.status)) e.view.status = event.status;
      e.view.reason = event.reason ?? "";
      e.view.model_sha256 = event.model_sha256;
    }
    // The model itself (and the strategy's state) is never kept with the events.
    const kept =
      event.type === "round_completed" ? { ...event, global: new Map(), strategy: undefined } : event;
    e.events.push(kept);
    if (e.events.length > MAX_EVENTS) e.events.shift();
    this.notify(e);
  }

  async *watch(jobId: string, signal: AbortSignal): AsyncIterable<CoordinatorEvent> {
    const e = this.entry(jobId);
    let next = 0;
    for (;;) {
      while (next < e.events.length) yield e.events[next++];
      if (ENDED.has(e.view.status) || signal.aborted) return;
      await new Promise<void>((resolve) => {
        const wake = () => {
          e.listeners.delete(wake);
          signal.removeEventListener("abort", wake);
          resolve();
        };
        e.listeners.add(wake);
        signal.addEventListener("abort", wake, { once: true });
      });
    }
  }

  private notify(e: Entry): void {
    for (const wake of [...e.listeners]) wake();
  }

  private entry(jobId: string): Entry {
    const e = this.jobs.get(jobId);
    if (!e) throw new HostError("JOB_NOT_FOUND", "no job with that id");
    return e;
  }
}
