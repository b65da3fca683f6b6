import { EnclaveError } from "../errors.js";
import type { LocalTrainingPlan } from "../federation/task.js";
import type { JobDirectory } from "../host/job-directory.js";
import { silentLogger, type Logger } from "../logging/logger.js";
import type { FederationJob } from "../schemas/federation.js";
import type { ModelSpec } from "../schemas/model.js";
import type { Strategy } from "../strategies/types.js";
import type { TensorMap } from "../tensor/tensor.js";
import { weightsHash } from "../model/safetensors.js";
import type { JobCheckpoint } from "./job-store.js";
import { resumeFederation } from "./resume.js";
import type { CoordinatorEvent, CoordinatorEventListener } from "./events.js";
import type { SessionHub } from "./session-hub.js";

/** What the coordinator needs to run one job besides its agents: model, plan, aggregation. */
export interface JobSetup {
  model: ModelSpec;
  plan: LocalTrainingPlan;
  initial: TensorMap;
  strategy: Strategy;
  evaluate: (weights: TensorMap) => { accuracy: number; loss: number };
  /** Released when the job ends (a ledger connection, say). */
  close?: () => Promise<void>;
}

export interface JobRunnerOptions {
  jobs: JobDirectory;
  sessions: SessionHub;
  setup: (job: FederationJob) => Promise<JobSetup>;
  /** How long a job waits for min_clients of its sites to be connected and attested (ms). */
  startTimeoutMs?: number;
  /** How often the runner looks for a queued job and for an admin's abort (ms). Default 500. */
  pollMs?: number;
  /**
   * How an event is recorded before the job goes on (default: `jobs.record`); the coordinator's
   * audit writes its ledger entry first, then the store's.
   */
  record?: CoordinatorEventListener;
  /** Every event, after it is recorded (the console). */
  onEvent?: CoordinatorEventListener;
  logger?: Logger;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The coordinator's job runner: it takes jobs from the directory one at a time and runs each on
 * the job's sites that hold a session and are attested (runFederation over RemoteAgents: the
 * same code as the simulation). Every CoordinatorEvent goes to the directory first (status,
 * WatchJob, rounds_completed, checkpoints), then to `onEvent`. A job waits at most
 * `startTimeoutMs` for `min_clients` of its sites; an admin's abort ends it at the next phase
 * boundary; a job that cannot run ends "failed" with the error's code. It never hangs: every
 * call to an agent has a deadline.
 */
export class JobRunner {
  private stopped = false;
  private loop: Promise<void> | null = null;
  private readonly log: Logger;
  private current: AbortController | null = null;

  constructor(private readonly o: JobRunnerOptions) {
    this.log = (o.logger ?? silentLogger).child({ component: "job-runner" });
  }

  start(): void {
    this.loop ??= this.work();
  }

  /** Stop taking jobs; a job in progress is aborted at its next phase boundary. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.current?.abort();
    await this.loop;
  }

  private async work(): Promise<void> {
    while (!this.stopped) {
      let claimed;
      try {
        claimed = await this.o.jobs.claim();
      } catch (err) {
        this.log.error(
          { code: err instanceof EnclaveError ? err.code : undefined },
          "cannot read the job queue",
        );
      }
      if (claimed) await this.run(claimed.job, claimed.resume);
      else await sleep(this.o.pollMs ?? 500);
    }
  }

  private async emit(event: CoordinatorEvent): Promise<void> {
    await (this.o.record ?? ((e) => this.o.jobs.record(e)))(event);
    await this.o.onEvent?.(event);
  }

  private async run(job: FederationJob, resume?: JobCheckpoint) {
    const id = job.job_id;
    const abort = new AbortController();
    this.current = abort;
    const watch = setInterval(() => {
      void this.o.jobs.get(id).then(
        (v) => v.status === "aborted" && abort.abort(),
        () => undefined,
      );
    }, this.o.pollMs ?? 500);
    let setup: JobSetup | undefined;
    let last = { rounds: resume?.rounds.length ?? 0, model: resume ? weightsHash(resume.global) : "" };
    const finished = (status: "failed" | "insufficient_clients", reason: string) =>
      this.emit({
        type: "job_finished",
        job_id: id,
        status,
        reason,
        rounds_completed: last.rounds,
        model_sha256: last.model,
      });
    try {
      const timeout = this.o.startTimeoutMs ?? 300_000;
      this.log.info(
        { job_id: id, sites: job.clients.length, min_clients: job.min_clients },
        "job waits for its sites",
      );
      const ready = await this.o.sessions.waitForAdmitted(
        job.clients,
        job.min_clients,
        timeout,
        abort.signal,
      );
      if (abort.signal.aborted) {
        await this.emit({
          type: "job_finished",
          job_id: id,
          status: "aborted",
          reason: "aborted by an admin",
          rounds_completed: last.rounds,
          model_sha256: last.model,
        });
        return;
      }
      if (ready.length < job.min_clients) {
        await finished(
          "insufficient_clients",
          `${ready.length} of the job's ${job.clients.length} site(s) connected and attested within ${Math.round(timeout / 1000)} s, fewer than min_clients ${job.min_clients}`,
        );
        return;
      }
      setup = await this.o.setup(job);
      // After a restart: the checkpointed model, the strategy's state and the clients' standings.
      const result = await resumeFederation(
        {
          job,
          model: setup.model,
          plan: setup.plan,
          agents: job.clients.map((c) => this.o.sessions.agent(c)),
          initial: setup.initial,
          strategy: setup.strategy,
          gate: this.o.sessions,
          evaluate: setup.evaluate,
          signal: abort.signal,
          onEvent: async (e) => {
            if (e.type === "round_completed") last = { rounds: e.round, model: e.model_sha256 };
            await this.emit(e);
          },
        },
        resume,
      );
      this.log.info({ job_id: id, status: result.status, rounds: result.rounds.length }, "job ended");
    } catch (err) {
      const reason =
        err instanceof EnclaveError ? `${err.code}: ${err.message}` : "internal coordinator error";
      this.log.error({ job_id: id, code: err instanceof EnclaveError ? err.code : undefined }, reason);
      await finished("failed", reason).catch(() => undefined);
    } finally {
      clearInterval(watch);
      this.current = null;
      await setup?.close?.().catch(() => undefined);
    }
  }
}
