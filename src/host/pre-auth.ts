import type { Socket } from "node:net";
import type { Server } from "node:tls";

export interface PreAuthLimits {
  /** TLS handshakes in progress at once; a connection beyond this is dropped unread. Default 64. */
  maxPendingHandshakes: number;
  /** A handshake not done by then is dropped (ms). Default 5000. */
  handshakeTimeoutMs: number;
  /** New connections per second from one address (token bucket refill). Default 20. */
  connectionsPerSecond: number;
  /** Bucket size: a burst of new connections from one address. Default 40. */
  connectionBurst: number;
}

export const DEFAULT_PRE_AUTH_LIMITS: PreAuthLimits = {
  maxPendingHandshakes: 64,
  handshakeTimeoutMs: 5000,
  connectionsPerSecond: 20,
  connectionBurst: 40,
};

/** Per-address buckets are forgotten this long after their last use. */
const BUCKET_IDLE_MS = 60_000;

/**
 * Bounds what a peer without a certificate can make the coordinator do: a connection is dropped
 * unread when its address exceeds its rate or too many handshakes are in flight, and the TLS
 * handshake (the only expensive step before authentication) has a deadline. Everything after the
 * handshake is refused by the request handler before any body is read.
 */
export class HandshakeGuard {
  private pending = 0;
  /** Handshakes in flight, by `address:port` (the TLS socket and its raw socket share it). */
  private readonly inFlight = new Map<string, () => void>();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  /** Connections dropped before their handshake, by reason (for metrics and tests). */
  readonly dropped = { rate: 0, pending: 0 };

  constructor(
    readonly limits: PreAuthLimits = DEFAULT_PRE_AUTH_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Attach to a TLS (or HTTP/2 secure) server before it listens. */
  attach(server: Server): void {
    server.on("connection", (socket: Socket) => this.admit(socket));
    const handshakeOver = (s: Socket) => this.inFlight.get(`${s.remoteAddress}:${s.remotePort}`)?.();
    server.on("secureConnection", handshakeOver);
    server.on("tlsClientError", (_err: Error, s: Socket) => handshakeOver(s));
  }

  /** TLS handshakes in progress now. */
  get pendingHandshakes(): number {
    return this.pending;
  }

  private admit(socket: Socket): void {
    if (!this.take(socket.remoteAddress ?? "?")) {
      this.dropped.rate++;
      socket.destroy();
      return;
    }
    if (this.pending >= this.limits.maxPendingHandshakes) {
      this.dropped.pending++;
      socket.destroy();
      return;
    }
    this.pending++;
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    let done = false;
    const settle = () => {
      if (done) return;
      done = true;
      this.pending--;
      this.inFlight.delete(key);
    };
    this.inFlight.set(key, settle);
    socket.once("close", settle);
  }

  private take(address: string): boolean {
    const t = this.now();
    const { connectionsPerSecond: rate, connectionBurst: burst } = this.limits;
    const b = this.buckets.get(address) ?? { tokens: burst, at: t };
    b.tokens = Math.min(burst, b.tokens + ((t - b.at) / 1000) * rate);
    b.at = t;
    this.buckets.set(address, b);
    if (this.buckets.size > 10_000) this.prune(t);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  private prune(t: number): void {
    for (const [k, b] of this.buckets) if (t - b.at > BUCKET_IDLE_MS) this.buckets.delete(k);
  }
}
