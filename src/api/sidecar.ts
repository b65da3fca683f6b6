import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { EnclaveError } from "../errors.js";
import type { AttestationReport } from "../schemas/attestation.js";

export const SIDECAR_HOST = "127.0.0.1";
export const SIDECAR_DEFAULT_PORT = 8000;

export interface BudgetStatus {
  epsilon: number;
  target_epsilon: number;
  ceiling: number;
  delta: number;
  remaining: number;
  steps: number;
  dataset_id: string | null;
}

/** What the sidecar reads: the very object the executor enforces the budget with. */
export interface AgentStatusSource {
  health(): { healthy: true } | { healthy: false; reason: string };
  attestation(): AttestationReport | null;
  budget(): BudgetStatus;
  /** Prometheus text exposition format 0.0.4. */
  metrics(): string;
}

function send(res: ServerResponse, status: number, body: unknown, type = "application/json"): void {
  const text = type === "application/json" ? JSON.stringify(body) : String(body);
  res.writeHead(status, {
    "content-type": type === "application/json" ? "application/json" : type,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  });
  res.end(text);
}

function route(source: AgentStatusSource, req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? "/").split("?")[0];
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("allow", "GET, HEAD");
    return send(res, 405, { error: "method not allowed" });
  }
  switch (path) {
    case "/health": {
      const h = source.health();
      const report = source.attestation();
      if (h.healthy && report?.status === "TRUSTED")
        return send(res, 200, { status: "ATTESTED", trusted: true });
      const reason = !h.healthy
        ? h.reason
        : report
          ? `attestation status is ${report.status}`
          : "not attested yet";
      return send(res, 503, {
        status: report?.status === "TRUSTED" ? "UNHEALTHY" : "NOT_ATTESTED",
        trusted: false,
        reason,
      });
    }
    case "/attestation": {
      const report = source.attestation();
      return report ? send(res, 200, report) : send(res, 503, { error: "not attested yet" });
    }
    case "/privacy/budget":
      return send(res, 200, source.budget());
    case "/metrics":
      return send(res, 200, source.metrics(), "text/plain; version=0.0.4; charset=utf-8");
    default:
      return send(res, 404, { error: "not found" });
  }
}

export interface Sidecar {
  readonly port: number;
  close(): Promise<void>;
}

/** The agent's management sidecar. Loopback only: it is never exposed beyond the host. */
export async function startSidecar(source: AgentStatusSource, port = SIDECAR_DEFAULT_PORT): Promise<Sidecar> {
  const server: Server = createServer((req, res) => {
    try {
      route(source, req, res);
    } catch (err) {
      // Never echo internals: a code is enough for the operator, the details are in the agent's log.
      send(res, 500, { error: "internal error", code: err instanceof EnclaveError ? err.code : "INTERNAL" });
    }
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        new EnclaveError(
          "SIDECAR_BIND_FAILED",
          `cannot listen on ${SIDECAR_HOST}:${port}: ${err.code ?? err.message}`,
        ),
      ),
    );
    server.listen(port, SIDECAR_HOST, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
