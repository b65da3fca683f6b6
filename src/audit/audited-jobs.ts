import type { Identity } from "../identity/certificates.js";
import type { FederationJob } from "../schemas/federation.js";
import type { JobDirectory, JobView } from "../host/job-directory.js";
import { HostError } from "../host/errors.js";
import { actorOf, type CoordinatorAuditor } from "./coordinator-auditor.js";

const NOBODY: Identity = { role: "admin", name: "unknown" };

/**
 * A job directory whose admin actions are audited first: a submission or an abort is committed to
 * the chain (and the head signed) before the directory acts on it. Reads pass straight through.
 */
export class AuditedJobDirectory implements JobDirectory {
  constructor(
    private readonly inner: JobDirectory,
    private readonly auditor: CoordinatorAuditor,
  ) {}

  async submit(job: FederationJob, by: Identity = NOBODY): Promise<JobView> {
    // A duplicate is refused before anything is recorded: the chain holds only real submissions.
    const exists = await this.inner.get(job.job_id).then(
      () => true,
      (err: unknown) => {
        if (err instanceof HostError && err.code === "JOB_NOT_FOUND") return false;
        throw err;
      },
    );
    if (exists) throw new HostError("JOB_EXISTS", `job ${job.job_id} exists already`);
    await this.auditor.submitted(job, by);
    return this.inner.submit(job, by);
  }

  async abort(jobId: string, by: Identity = NOBODY): Promise<JobView> {
    await this.inner.get(jobId); // an unknown job is refused, not audited
    await this.auditor.action("abort", { job_id: jobId }, actorOf(by));
    return this.inner.abort(jobId, by);
  }

  get(jobId: string): Promise<JobView> {
    return this.inner.get(jobId);
  }

  list(): Promise<JobView[]> {
    return this.inner.list();
  }

  watch(jobId: string, signal: AbortSignal) {
    return this.inner.watch(jobId, signal);
  }

  /** The runner's side passes through (its events are audited by the coordinator's onEvent). */
  claim() {
    return this.inner.claim();
  }

  record(event: Parameters<JobDirectory["record"]>[0]) {
    return this.inner.record(event);
  }
}
