import { AgentService } from "../gen/agent/v1/agent_pb.js";
import type { Identity, Role } from "../identity/certificates.js";

/** The service's path prefix: every RPC is `/agent.v1.AgentService/<Method>`. */
export const SERVICE_PATH = `/${AgentService.typeName}/`;

/**
 * Which roles may call each method. A method of the service that is missing here is refused to
 * everyone (fail closed); a test checks that the table covers the service.
 */
export const METHOD_ROLES: Readonly<Record<string, readonly Role[]>> = {
  SubmitJob: ["admin"],
  GetJob: ["admin"],
  ListJobs: ["admin"],
  WatchJob: ["admin"],
  AbortJob: ["admin"],
  Session: ["site"],
};

export type Verdict = { ok: true; method: string } | { ok: false; status: 401 | 403 | 404; reason: string };

/**
 * Decide a request from its path and the identity of its verified client certificate (null: no
 * certificate from the project CA), before any of its body is read.
 */
export function authorize(path: string, identity: Identity | null): Verdict {
  if (!identity)
    return { ok: false, status: 401, reason: "a client certificate from the project CA is required" };
  if (!path.startsWith(SERVICE_PATH)) return { ok: false, status: 404, reason: "no such method" };
  const method = path.slice(SERVICE_PATH.length);
  const known = Object.values(AgentService.method).some((m) => m.name === method);
  if (!known) return { ok: false, status: 404, reason: "no such method" };
  const roles = Object.hasOwn(METHOD_ROLES, method) ? METHOD_ROLES[method] : [];
  if (!roles.includes(identity.role))
    return { ok: false, status: 403, reason: `role ${identity.role} may not call ${method}` };
  return { ok: true, method };
}
