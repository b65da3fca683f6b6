import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ClientState, RoundRecord } from "../coordinator/coordinator.js";
import type { CoordinatorEvent } from "../coordinator/events.js";
import { calibrateJobNoise, fillJob, type SitePlan } from "../coordinator/job-fill.js";
import { loadKitAs, type Kit } from "../identity/kit.js";
import type { FederationJob, FederationJobInput } from "../schemas/federation.js";
import { adminClient, rpcError, type AdminClient } from "./admin-client.js";
import { SdkError } from "./errors.js";

type WithoutModel<E> = E extends unknown ? Omit<E, "global" | "strategy"> : never;

/** A job's event as WatchJob carries it: a CoordinatorEvent without the model itself. */
export type JobEvent = WithoutModel<CoordinatorEvent>;
/** One released round: its record (clients, loss, accuracy, per-site epsilon) and the model's hash. */
export type RoundEvent = Extract<JobEvent, { type: "round_completed" }>;

/** What a job came to, folded from its events (the same numbers `enclave simulate --json` prints). */
export interface JobOutcome {
  job_id: string;
  status: Extract<JobEvent, { type: "job_finished" }>["status"];
  reason?: string;
  rounds: RoundRecord[];
  /** The last round's score on the coordinator's held-out data; null when it holds none (unknown). */
  final: { accuracy: number | null; loss: number | null };
  clients: { id: string; epsilon: number; examples: number; state: ClientState; reason?: string }[];
  model_sha256: string;
}

export interface OrchestrateOptions {
  /** An admin's startup kit: its directory or the loaded kit. */
  kit: string | Kit;
  /** The coordinator (default: the one the kit names), e.g. `https://127.0.0.1:7339`. */
  endpoint?: string;
  /** DP_SGD calibration when the job omits `privacy.noise_multiplier` (the smallest site's rows). */
  calibration?: Partial<SitePlan>;
  /** How often a broken event stream is re-opened before COORDINATOR_UNAVAILABLE (default 30, 1 s apart). */
  reconnects?: number;
}

/** A FederationJob that may leave out `job_id` and `privacy.noise_multiplier` (filled by `orchestrate`). */
export type JobRequest = Omit<FederationJobInput, "job_id" | "privacy"> & {
  job_id?: string;
  privacy: Omit<FederationJobInput["privacy"], "noise_multiplier"> & { noise_multiplier?: number };
};

/** A submitted job: its id, its events and rounds as they happen, and what it came to. */
export interface JobHandle {
  readonly jobId: string;
  readonly job: FederationJob;
  /** Every event of the job from its start, in order; ends after `job_finished`. */
  events(signal?: AbortSignal): AsyncIterable<JobEvent>;
  /** Each released round once, in order; ends when the job ends. */
  rounds(signal?: AbortSignal): AsyncIterable<RoundEvent>;
  /** Resolves when the job ends, whatever its status (a failed job is an outcome, not an exception). */
  result(signal?: AbortSignal): Promise<JobOutcome>;
  /** Ask the coordinator to stop the job at its next phase boundary. */
  abort(): Promise<void>;
}

/** Submit a validated job; resolves with its id (`enclave submit`). */
export async function submitJob(client: AdminClient, job: FederationJob): Promise<string> {
  try {
    return (await client.submitJob({ jobJson: JSON.stringify(job) })).jobId;
  } catch (err) {
    throw rpcError(err);
  }
}

/** A broken connection (not a refusal): the coordinator went away, the stream is re-opened. */
const lost = (err: unknown) =>
  err instanceof ConnectError &&
  [Code.Unavailable, Code.Internal, Code.Unknown, Code.Aborted, Code.Canceled].includes(err.code);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A job's events from its start (`enclave watch`). The coordinator replays a job's events from
 * the first, so a stream that breaks (a coordinator restart) is re-opened and the events already
 * seen are skipped: each event comes once, in order.
 */
export async function* watchJob(
  client: AdminClient,
  jobId: string,
  o: { reconnects?: number; signal?: AbortSignal } = {},
): AsyncIterable<JobEvent> {
  let seen = 0;
  let tries = 0;
  for (;;) {
    let index = 0;
    try {
      for await (const { event } of client.watchJob({ jobId }, { signal: o.signal })) {
        if (!event || index++ < seen) continue;
        seen++;
        tries = 0;
        const e = JSON.parse(event.eventJson) as JobEvent;
        yield e;
        if (e.type === "job_finished") return;
      }
      if (o.signal?.aborted) return;
      throw new SdkError(
        "JOB_STREAM_ENDED",
        "the coordinator ended the job's event stream before the job ended",
      );
    } catch (err) {
      if (o.signal?.aborted) return;
      if (!lost(err)) throw rpcError(err);
      if (++tries > (o.reconnects ?? 30))
        throw new SdkError(
          "COORDINATOR_UNAVAILABLE",
          "the coordinator cannot be reached (connection refused or lost)",
        );
      await sleep(1000);
    }
  }
}

/** The job's outcome from its events: rounds, each client's last standing, the final score. */
export function foldOutcome(jobId: string, events: readonly JobEvent[]): JobOutcome | undefined {
  const rounds: RoundRecord[] = [];
  const clients = new Map<string, JobOutcome["clients"][number]>();
  const client = (id: string) => {
    if (!clients.has(id)) clients.set(id, { id, epsilon: 0, examples: 0, state: "active" });
    return clients.get(id)!;
  };
  for (const e of events) {
    if (e.type === "job_started") for (const id of e.clients) client(id);
    else if (e.type === "client_reported")
      Object.assign(client(e.client_id), {
        epsilon: e.epsilon,
        examples: e.examples,
        state: "active",
        reason: undefined,
      });
    else if (e.type === "client_excluded")
      Object.assign(client(e.client_id), { state: e.state, reason: e.reason });
    else if (e.type === "round_completed") {
      rounds.push(e.record);
      for (const [id, eps] of Object.entries(e.record.epsilon)) client(id).epsilon = eps;
    } else if (e.type === "job_finished") {
      const last = rounds.at(-1);
      const known = (x: number | null | undefined) =>
        typeof x === "number" && Number.isFinite(x) ? x : null;
      return {
        job_id: jobId,
        status: e.status,
        ...(e.reason !== undefined ? { reason: e.reason } : {}),
        rounds,
        final: { accuracy: known(last?.accuracy), loss: known(last?.loss) },
        clients: [...clients.values()].map(({ reason, ...c }) =>
          reason === undefined ? c : { ...c, reason },
        ),
        model_sha256: e.model_sha256,
      };
    }
  }
  return undefined;
}

/**
 * Submit a FederationJob to a coordinator with an admin's kit and follow it: the SDK's
 * `enclave submit` + `enclave watch`. A job without `job_id` gets a fresh one; without
 * `privacy.noise_multiplier` the noise is calibrated to its target (DP_SGD: from
 * `calibration.rows`). Errors are typed: the job's own fields (VALIDATION_FAILED) before anything
 * is sent, the coordinator's refusal with its code, COORDINATOR_UNAVAILABLE when it cannot be reached.
 */
export async function orchestrate(job: JobRequest, o: OrchestrateOptions): Promise<JobHandle> {
  const client = adminClient(await loadKitAs(o.kit, "admin"), o.endpoint);
  const filled = fillJob(job as FederationJobInput, {
    newId: randomUUID,
    calibrate: (j) =>
      calibrateJobNoise(j, {
        rows: o.calibration?.rows,
        batchSize: o.calibration?.batchSize ?? 16,
        epochs: o.calibration?.epochs ?? 1,
      }),
  }).job;
  const jobId = await submitJob(client, filled);
  const events = (signal?: AbortSignal) => watchJob(client, jobId, { reconnects: o.reconnects, signal });
  return {
    jobId,
    job: filled,
    events,
    async *rounds(signal) {
      for await (const e of events(signal)) if (e.type === "round_completed") yield e;
    },
    async result(signal) {
      const all: JobEvent[] = [];
      for await (const e of events(signal)) all.push(e);
      const outcome = foldOutcome(jobId, all);
      if (!outcome) throw new SdkError("JOB_STREAM_ENDED", "the job's event stream ended before the job did");
      return outcome;
    },
    async abort() {
      try {
        await client.abortJob({ jobId });
      } catch (err) {
        throw rpcError(err);
      }
    },
  };
}
