import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import type { Duplex } from "node:stream";
import { createContextValues } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createSecureServer } from "node:http2";
import {
  certificatePublicKey,
  peerIdentity,
  type Credential,
  type Identity,
} from "../identity/certificates.js";
import type { SessionHub } from "../coordinator/session-hub.js";
import type { Logger } from "../logging/logger.js";
import { silentLogger } from "../logging/logger.js";
import { authorize } from "./authorization.js";
import { HostError } from "./errors.js";
import type { JobDirectory } from "./job-directory.js";
import { DEFAULT_PRE_AUTH_LIMITS, HandshakeGuard, type PreAuthLimits } from "./pre-auth.js";
import { agentServiceRoutes, PEER, PEER_KEY } from "./routes.js";
import type { AuditChain } from "../audit/chain.js";
import { AUDIT_SOCKET_PATH, AuditSocket } from "./audit-socket.js";
import type { Dashboard } from "../dashboard/dashboard.js";

/** The host API's default address: every interface, port 7339. */
export const HOST_API_HOST = "0.0.0.0";
export const HOST_API_PORT = 7339;

/** Largest RPC message either way; models travel in chunks well below it. */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

export interface HostApiOptions {
  /** The coordinator's certificate (server and client auth) and key. */
  credential: Credential;
  /** The project CA: the only issuer whose client certificates are accepted. */
  caPem: string;
  jobs: JobDirectory;
  /** The agents' sessions (agent.v1 Session); without it the method is unimplemented. */
  sessions?: SessionHub;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  limits?: Partial<PreAuthLimits>;
  /** Serial numbers (hex) of revoked certificates; checked at every handshake. */
  isRevoked?: (serialHex: string) => boolean;
  logger?: Logger;
  /** The coordinator's audit chain, streamed live at GET /ws/audit to admins. */
  audit?: AuditChain;
  /** The admin dashboard under /ui/ (an admin certificate, or the session its login link opened). */
  dashboard?: Dashboard;
}

export interface HostApi {
  readonly port: number;
  readonly guard: HandshakeGuard;
  close(): Promise<void>;
}

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

/** The verified identity of the request's client certificate, or null. */
function identityOf(req: Request, isRevoked: (serial: string) => boolean): Identity | null {
  const socket = req.socket as TLSSocket;
  if (!socket.authorized) return null;
  const cert = socket.getPeerCertificate();
  // (a socket upgraded from HTTP/1.1 may report no certificate fields at all: no identity then)
  if (!cert?.serialNumber || isRevoked(cert.serialNumber.toLowerCase())) return null;
  return peerIdentity(cert);
}

function refuse(req: Request, res: Response, status: number, reason: string): void {
  // A plain answer, and nothing of the request read; an HTTP/1.1 connection is closed after it.
  const headers: Record<string, string> = { "content-type": "text/plain; charset=utf-8" };
  if (req.httpVersionMajor === 1) headers.connection = "close";
  res.writeHead(status, headers);
  res.end(reason + "\n");
}

/**
 * The coordinator's host API on mTLS: `GET /ping` answers `pong` to anyone; every other request
 * needs a client certificate from the project CA whose role may call the method (checked before
 * its body is read), and is then served as agent.v1.AgentService over Connect, gRPC or gRPC-Web
 * (HTTP/2, and HTTP/1.1 for Connect and gRPC-Web).
 */
export async function startHostApi(o: HostApiOptions): Promise<HostApi> {
  const log = (o.logger ?? silentLogger).child({ component: "host-api" });
  const isRevoked = o.isRevoked ?? (() => false);
  const limits = { ...DEFAULT_PRE_AUTH_LIMITS, ...o.limits };
  const rpc = connectNodeAdapter({
    routes: agentServiceRoutes(o.jobs, o.sessions),
    readMaxBytes: MAX_MESSAGE_BYTES,
    writeMaxBytes: MAX_MESSAGE_BYTES,
    contextValues: (req) => {
      const identity = identityOf(req as Request, isRevoked);
      const raw = identity ? (req.socket as TLSSocket).getPeerCertificate().raw : undefined;
      return createContextValues()
        .set(PEER, identity)
        .set(PEER_KEY, raw ? certificatePublicKey(raw) : null);
    },
  });
  const handle = (req: Request, res: Response) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/ping" && req.method === "GET") {
      res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
      res.end("pong\n");
      return;
    }
    const identity = identityOf(req, isRevoked);
    if (o.dashboard && (path === "/ui" || path.startsWith("/ui/"))) {
      o.dashboard.handle(req, res, identity).catch(() => refuse(req, res, 500, "dashboard error"));
      return;
    }
    const verdict = authorize(path, identity);
    if (!verdict.ok) {
      log.info(
        { code: "RPC_REFUSED", status: verdict.status, path: path.slice(0, 100), peer: identity?.name },
        verdict.reason,
      );
      refuse(req, res, verdict.status, verdict.reason);
      return;
    }
    rpc(req as never, res as never);
  };
  const server = createSecureServer(
    {
      key: o.credential.keyPem,
      cert: o.credential.certPem,
      ca: o.caPem,
      requestCert: true,
      rejectUnauthorized: false, // /ping needs no certificate; every RPC checks `authorized` itself
      minVersion: "TLSv1.2",
      allowHTTP1: true,
      handshakeTimeout: limits.handshakeTimeoutMs,
      maxSessionMemory: 32,
      settings: { maxConcurrentStreams: 100, maxHeaderListSize: 16 * 1024 },
      maxSessionInvalidFrames: 100,
    },
    handle,
  );
  const sockets = new Set<TLSSocket>();
  // A revoked certificate is refused at the handshake: the connection ends before any request.
  server.on("secureConnection", (socket: TLSSocket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    const cert = socket.getPeerCertificate();
    if (socket.authorized && cert?.serialNumber && isRevoked(cert.serialNumber.toLowerCase())) {
      log.warn(
        { code: "CERTIFICATE_REVOKED", peer: peerIdentity(cert)?.name },
        "revoked certificate refused",
      );
      socket.destroy();
    }
  });
  server.on("tlsClientError", () => undefined);
  const auditSocket = o.audit ? new AuditSocket(o.audit, log) : null;
  // WebSockets ride HTTP/1.1 upgrades (a browser opens them on their own HTTP/1.1 connection).
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== AUDIT_SOCKET_PATH || !auditSocket) {
      socket.end("HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
      return;
    }
    // A browser has no certificate: its dashboard session counts as the admin's, from its own origin.
    const browser =
      o.dashboard?.hasSession(req) && req.headers.origin === `https://${req.headers.host}`
        ? { role: "admin" as const, name: "dashboard" }
        : null;
    auditSocket.upgrade(req, socket, head, identityOf(req, isRevoked) ?? browser);
  });
  const guard = new HandshakeGuard(limits);
  guard.attach(server as never);
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        new HostError(
          "HOST_API_BIND_FAILED",
          `cannot listen on ${o.host ?? HOST_API_HOST}:${o.port ?? HOST_API_PORT} (${err.code ?? "error"})`,
        ),
      ),
    );
    server.listen(o.port ?? HOST_API_PORT, o.host ?? HOST_API_HOST, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : (o.port ?? HOST_API_PORT);
  log.info({ host: o.host ?? HOST_API_HOST, port }, "host API listening");
  return {
    port,
    guard,
    close: () =>
      new Promise<void>((resolve) => {
        auditSocket?.close();
        server.close(() => resolve());
        // Streams (WatchJob, sessions) would hold the server open: end every connection.
        for (const s of sockets) s.destroy();
      }),
  };
}
