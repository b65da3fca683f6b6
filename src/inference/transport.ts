import { connect, createServer, type Server, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { InferenceError } from "./errors.js";

/** Where an enclave listens: a Unix socket, loopback TCP, or AF_VSOCK (Nitro). */
export type Endpoint =
  | { kind: "unix"; path: string }
  | { kind: "tcp"; host: string; port: number }
  | { kind: "vsock"; cid: number; port: number };

const invalid = (rule: string) => new InferenceError("ENDPOINT_INVALID", `endpoint: ${rule}`);

function portOf(text: string): number {
  const n = Number(text);
  if (!/^\d{1,10}$/.test(text) || !Number.isInteger(n)) throw invalid("port must be an integer");
  return n;
}

/** `unix:PATH`, `tcp:HOST:PORT` or `vsock:CID:PORT` (CID 0: discover the enclave's CID). */
export function parseEndpoint(text: string): Endpoint {
  if (typeof text !== "string" || text.length === 0 || text.length > 4096)
    throw invalid("must be 1..4096 characters");
  const colon = text.indexOf(":");
  const scheme = colon < 0 ? "" : text.slice(0, colon);
  const rest = text.slice(colon + 1);
  if (scheme === "unix") {
    if (rest.length === 0) throw invalid("unix: needs a socket path");
    return { kind: "unix", path: rest };
  }
  const last = rest.lastIndexOf(":");
  if ((scheme === "tcp" || scheme === "vsock") && last > 0) {
    const port = portOf(rest.slice(last + 1));
    if (scheme === "tcp") {
      const host = rest.slice(0, last).replace(/^\[(.*)\]$/, "$1");
      if (port < 1 || port > 65535) throw invalid("tcp port must be in 1..65535");
      return { kind: "tcp", host, port };
    }
    const cid = portOf(rest.slice(0, last));
    if (cid > 0xffffffff || port > 0xffffffff) throw invalid("vsock CID and port must be 32-bit");
    return { kind: "vsock", cid, port };
  }
  throw invalid("must be unix:PATH, tcp:HOST:PORT or vsock:CID:PORT");
}

export function formatEndpoint(e: Endpoint): string {
  if (e.kind === "unix") return `unix:${e.path}`;
  if (e.kind === "tcp") return `tcp:${e.host.includes(":") ? `[${e.host}]` : e.host}:${e.port}`;
  return `vsock:${e.cid}:${e.port}`;
}

/** A listening endpoint; `close` stops accepting, drops open connections, and resolves once closed. */
export interface Listener {
  readonly endpoint: Endpoint;
  close(): Promise<void>;
}

/** One interface for every transport: accept byte streams, or dial one. */
export interface Transport {
  listen(endpoint: Endpoint, onConnection: (socket: Duplex) => void): Promise<Listener>;
  dial(endpoint: Endpoint, options: { timeoutMs: number }): Promise<Duplex>;
}

function osCode(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  return typeof code === "string" ? code : "error";
}

/** Unix sockets and TCP through node:net (the same socket type, so one implementation). */
export const netTransport: Transport = {
  async listen(endpoint, onConnection) {
    if (endpoint.kind === "vsock")
      throw new InferenceError("TRANSPORT_UNAVAILABLE", "netTransport does not do vsock");
    const open = new Set<Socket>();
    const server: Server = createServer((s: Socket) => {
      open.add(s);
      s.once("close", () => open.delete(s));
      onConnection(s);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err) =>
        reject(
          new InferenceError(
            "TRANSPORT_UNAVAILABLE",
            `cannot listen on ${formatEndpoint(endpoint)} (${osCode(err)})`,
          ),
        ),
      );
      if (endpoint.kind === "unix") server.listen(endpoint.path, resolve);
      else server.listen(endpoint.port, endpoint.host, resolve);
    });
    const address = server.address();
    const bound: Endpoint =
      endpoint.kind === "tcp" && address && typeof address === "object"
        ? { ...endpoint, port: address.port }
        : endpoint;
    return {
      endpoint: bound,
      close: () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          for (const s of open) s.destroy();
        }),
    };
  },

  dial(endpoint, { timeoutMs }) {
    if (endpoint.kind === "vsock") {
      return Promise.reject(new InferenceError("TRANSPORT_UNAVAILABLE", "netTransport does not do vsock"));
    }
    return new Promise((resolve, reject) => {
      const socket =
        endpoint.kind === "unix"
          ? connect({ path: endpoint.path })
          : connect({ host: endpoint.host, port: endpoint.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new InferenceError(
            "TIMEOUT",
            `connecting to ${formatEndpoint(endpoint)} timed out after ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.removeAllListeners("error");
        resolve(socket);
      });
      socket.once("error", (err) => {
        clearTimeout(timer);
        const code = osCode(err);
        const refused = code === "ECONNREFUSED" || code === "ENOENT";
        reject(
          new InferenceError(
            refused ? "CONNECTION_REFUSED" : "CONNECTION_CLOSED",
            `cannot connect to ${formatEndpoint(endpoint)} (${code})`,
          ),
        );
      });
    });
  },
};
