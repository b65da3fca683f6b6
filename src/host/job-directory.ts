import type { CoordinatorEvent } from "../coordinator/events.js";
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

/** The jobs the host API reports on: what an admin submits, reads, watches and aborts. */
export interface JobDirectory {
  /** `by`: the admin whose certificate made the call (the audit ledger's actor). */
  submit(job: FederationJob, by?: Identity): Promise<JobView>;
  get(jobId: string): Promise<JobView>;
  list(): Promise<JobView[]>;
  abort(jobId: string, by?: Identity): Promise<JobView>;
  /** The job's events so far, then live ones, ending after the job ends (or `signal` aborts). */
  watch(jobId: string, signal: AbortSignal): AsyncIterable<CoordinatorEvent>;
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
  view: JobView;
  events: CoordinatorEvent[];
  listeners: Set<() => void>;
}

/**
 * Jobs in this process's memory: the host API's directory until the coordinator keeps its state
 * in PostgreSQL. `record` feeds it the coordinator's events.
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
    this.jobs.set(job.job_id, { view, events: [], listeners: new Set() });
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

  /** Take one coordinator event into the job's view and its watchers. */
  record(event: CoordinatorEvent): void {
    const e = this.entry(event.job_id);
    if (event.type === "job_started") e.view.status = "running";
    if (event.type === "round_completed") {
      e.view.rounds_completed = event.round;
      e.view.model_sha256 = event.model_sha256;
    }
    if (event.type === "job_finished") {
      e.view.status = event.status;
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
