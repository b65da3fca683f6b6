import {
  Code,
  ConnectError,
  createContextKey,
  type ConnectRouter,
  type HandlerContext,
} from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import type { CoordinatorEvent } from "../coordinator/events.js";
import { EnclaveError, ValidationError } from "../errors.js";
import { AgentService } from "../gen/agent/v1/agent_pb.js";
import { JobEventSchema, JobStatusSchema, type JobStatus } from "../gen/agent/v1/job_pb.js";
import type { Identity } from "../identity/certificates.js";
import type { SessionHub } from "../coordinator/session-hub.js";
import type { JobDirectory, JobView } from "./job-directory.js";
import { parseJobText } from "./job-directory.js";

/** The caller's identity, from its verified client certificate (set before the handler runs). */
export const PEER = createContextKey<Identity | null>(null, { description: "peer identity" });

/** The public key (SPKI DER) of the caller's verified client certificate. */
export const PEER_KEY = createContextKey<Uint8Array | null>(null, { description: "peer TLS key" });

/** An EnclaveError as a ConnectError: its code in the message, the class and code in metadata. */
function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (!(err instanceof EnclaveError)) return new ConnectError("internal error", Code.Internal);
  const code =
    err instanceof ValidationError
      ? Code.InvalidArgument
      : err.code === "JOB_NOT_FOUND"
        ? Code.NotFound
        : err.code === "JOB_EXISTS"
          ? Code.AlreadyExists
          : Code.FailedPrecondition;
  return new ConnectError(`${err.code}: ${err.message}`, code, { "enclave-error-code": err.code });
}

function guarded<A extends unknown[], R>(fn: (...a: A) => Promise<R>): (...a: A) => Promise<R> {
  return async (...a) => {
    try {
      return await fn(...a);
    } catch (err) {
      throw toConnectError(err);
    }
  };
}

function status(v: JobView): JobStatus {
  return create(JobStatusSchema, {
    jobId: v.job_id,
    status: v.status,
    roundsCompleted: v.rounds_completed,
    rounds: v.rounds,
    reason: v.reason,
    modelSha256: v.model_sha256,
    submittedAt: v.submitted_at,
  });
}

function eventMessage(e: CoordinatorEvent) {
  const {
    global: _model,
    strategy: _state,
    ...data
  } = e as CoordinatorEvent & {
    global?: unknown;
    strategy?: unknown;
  };
  return create(JobEventSchema, {
    jobId: e.job_id,
    type: e.type,
    round: "round" in e ? e.round : 0,
    eventJson: JSON.stringify(data),
  });
}

/**
 * agent.v1.AgentService over a job directory (the admin methods) and a session hub (the agents'
 * dial-out sessions; without one, Session is unimplemented).
 */
export function agentServiceRoutes(
  jobs: JobDirectory,
  sessions?: SessionHub,
): (router: ConnectRouter) => void {
  return (router) =>
    router.service(AgentService, {
      submitJob: guarded(async (req, ctx: HandlerContext) => {
        const view = await jobs.submit(parseJobText(req.jobJson), ctx.values.get(PEER) ?? undefined);
        return { jobId: view.job_id };
      }),
      getJob: guarded(async (req) => ({ job: status(await jobs.get(req.jobId)) })),
      listJobs: guarded(async () => ({ jobs: (await jobs.list()).map(status) })),
      abortJob: guarded(async (req, ctx: HandlerContext) => ({
        job: status(await jobs.abort(req.jobId, ctx.values.get(PEER) ?? undefined)),
      })),
      async *watchJob(req, ctx: HandlerContext) {
        try {
          for await (const e of jobs.watch(req.jobId, ctx.signal)) yield { event: eventMessage(e) };
        } catch (err) {
          throw toConnectError(err);
        }
      },
      async *session(requests, ctx: HandlerContext) {
        if (!sessions) throw new ConnectError("this host serves no agent sessions", Code.Unimplemented);
        const peer = ctx.values.get(PEER);
        const publicKey = ctx.values.get(PEER_KEY);
        if (!peer || !publicKey)
          throw new ConnectError("a site certificate is required", Code.Unauthenticated);
        try {
          yield* sessions.serve({ name: peer.name, publicKey }, requests, ctx.signal);
        } catch (err) {
          throw toConnectError(err);
        }
      },
    });
}
