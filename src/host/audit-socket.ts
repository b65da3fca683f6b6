import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import type { AuditChain } from "../audit/chain.js";
import { canonicalJson } from "../audit/entry.js";
import type { Identity } from "../identity/certificates.js";
import type { Logger } from "../logging/logger.js";

/** The path of the live audit stream on the host API. */
export const AUDIT_SOCKET_PATH = "/ws/audit";
const PAGE = 500;
/** A client that falls this far behind is dropped; it resumes from its last sequence number. */
const MAX_BUFFERED = 16 * 1024 * 1024;

function reject(socket: Duplex, status: number, reason: string): void {
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${reason.length + 1}\r\n\r\n${reason}\n`,
  );
}

/**
 * `GET /ws/audit?from=N`: the audit chain as a WebSocket stream, one entry (canonical JSON) per
 * message, from sequence number N (default 1) on, then live. The stream reads the chain by
 * sequence number and is woken by each append, so a reconnect with `from` = last seen + 1 resumes
 * with no gap and no duplicate. Admin certificates only (checked before the upgrade).
 */
export class AuditSocket {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024 });

  constructor(
    private readonly chain: AuditChain,
    private readonly log: Logger,
  ) {}

  /** Handle an upgrade request already known to be for AUDIT_SOCKET_PATH. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, identity: Identity | null): void {
    if (!identity) return reject(socket, 401, "a client certificate from the project CA is required");
    if (identity.role !== "admin")
      return reject(socket, 403, `role ${identity.role} may not read the audit stream`);
    const raw = new URL(req.url ?? "/", "https://host").searchParams.get("from") ?? "1";
    if (!/^[1-9][0-9]{0,15}$/.test(raw)) return reject(socket, 400, "from: must be a sequence number >= 1");
    this.wss.handleUpgrade(req, socket, head, (ws) => void this.pump(ws, Number(raw)));
  }

  private async pump(ws: WebSocket, from: number): Promise<void> {
    let next = from;
    let wake: (() => void) | null = null;
    let appended = 0;
    const unsubscribe = this.chain.subscribe(() => {
      appended++;
      wake?.();
    });
    const closed = new Promise<void>((done) => ws.once("close", () => done()));
    try {
      while (ws.readyState === ws.OPEN) {
        const seen = appended;
        const page = await this.chain.entries(next, PAGE);
        for (const e of page) {
          ws.send(canonicalJson(e));
          next = e.seq + 1;
        }
        if (ws.bufferedAmount > MAX_BUFFERED) {
          ws.close(1013, "too far behind: reconnect with from");
          break;
        }
        // Read again at once if more is there or something was appended during the read; else
        // wait for the next append. Every read starts at `next`: no gap, no duplicate.
        if (page.length === PAGE || appended !== seen) continue;
        await Promise.race([new Promise<void>((r) => (wake = r)), closed]);
        wake = null;
      }
    } catch (err) {
      this.log.error(
        { code: (err as { code?: string }).code ?? "AUDIT_STREAM_FAILED" },
        "audit stream ended",
      );
      ws.close(1011, "audit stream failed");
    } finally {
      unsubscribe();
    }
  }

  close(): void {
    for (const c of this.wss.clients) c.terminate();
    this.wss.close();
  }
}
