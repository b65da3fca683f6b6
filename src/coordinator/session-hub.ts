import { ProtocolError } from "../federation/errors.js";
import { MessageQueue } from "../federation/transports/message-queue.js";
import { RemoteAgent, type RemoteAgentOptions, type SessionLink } from "../federation/transports/network.js";
import type { ResponseInit } from "../federation/transports/session-wire.js";
import type { AgentHandle } from "../federation/agent-handle.js";
import type { SessionRequest } from "../gen/agent/v1/session_pb.js";
import { EnclaveError } from "../errors.js";
import { silentLogger, type Logger } from "../logging/logger.js";
import type { AttestationReport } from "../schemas/attestation.js";
import type { Admission } from "./attestation-gate.js";

export interface SessionHubOptions {
  /** The coordinator's AttestationGate (one per coordinator: nonces and pinned keys are its). */
  gate: Admission;
  /** How long a trusted verdict stands: the trust policy's reattest_interval_seconds. */
  reattestSeconds: number;
  /** Heartbeat interval both ways (s). Default 5. */
  heartbeatSeconds?: number;
  /** A session silent for this long is ended (ms). Default 4 heartbeats. */
  silenceMs?: number;
  /** The coordinator's name, sent in Welcome. */
  coordinatorId: string;
  maxChunkBytes: number;
  remote?: RemoteAgentOptions;
  logger?: Logger;
}

/** Who opened a session: the verified client certificate's participant and its public key. */
export interface SessionPeer {
  name: string;
  /** SPKI DER of the TLS client certificate. */
  publicKey: Uint8Array;
}

/**
 * The coordinator's registry of agent sessions. Each site that dials in gets (or gets back) its
 * RemoteAgent; the hub challenges it at once and again at the trust policy's interval, and a
 * site whose attestation fails or lapses gets no further task (its handle refuses them). It
 * also is the Admission the job runner uses, so every verdict, in a round or between rounds,
 * lands on the same handle.
 */
export class SessionHub implements Admission {
  private readonly agents = new Map<string, RemoteAgent>();
  private readonly changed = new Set<() => void>();
  private readonly log: Logger;

  constructor(private readonly o: SessionHubOptions) {
    this.log = (o.logger ?? silentLogger).child({ component: "sessions" });
  }

  /** The handle for `id` (created on first use; it outlives the agent's sessions). */
  agent(id: string): RemoteAgent {
    let a = this.agents.get(id);
    if (!a) {
      a = new RemoteAgent(id, { ...this.o.remote, logger: this.o.logger });
      this.agents.set(id, a);
    }
    return a;
  }

  /** Of `ids`, those connected now with a standing trusted verdict. */
  admitted(ids: readonly string[]): string[] {
    return ids.filter((id) => {
      const a = this.agents.get(id);
      return a !== undefined && a.connected && a.trusted;
    });
  }

  /** Resolves when at least `n` of `ids` are admitted, or after `timeoutMs` / on abort. */
  async waitForAdmitted(ids: readonly string[], n: number, timeoutMs: number, signal?: AbortSignal) {
    const deadline = Date.now() + timeoutMs;
    while (this.admitted(ids).length < n && Date.now() < deadline && !signal?.aborted) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(t);
          this.changed.delete(wake);
          signal?.removeEventListener("abort", wake);
          resolve();
        };
        const t = setTimeout(wake, Math.max(0, Math.min(1000, deadline - Date.now())));
        this.changed.add(wake);
        signal?.addEventListener("abort", wake, { once: true });
      });
    }
    return this.admitted(ids);
  }

  /**
   * Admission through the gate, recorded on the agent's handle (trusted until the next
   * re-attestation is due, or refused) and told to the agent (status and failed check names).
   */
  async admit(agent: AgentHandle): Promise<AttestationReport> {
    const remote = this.agent(agent.id);
    const validMs = this.o.reattestSeconds * 1000;
    try {
      const report = await this.o.gate.admit(remote);
      remote.attested(report, validMs);
      remote.tell(report.status);
      this.notify();
      this.log.info(
        { node: agent.id, status: report.status, hardware_type: report.hardware_type },
        "attestation verdict",
      );
      return report;
    } catch (err) {
      const why = err instanceof EnclaveError ? `${err.code}: ${err.message}` : "attestation failed";
      remote.attested(null, 0, why);
      remote.tell("REFUSED", why);
      this.notify();
      this.log.warn({ node: agent.id, code: err instanceof EnclaveError ? err.code : undefined }, why);
      throw err;
    }
  }

  /**
   * Serve one agent.v1 Session: Hello (naming the certificate's participant) first, then the
   * handle's messages out and the agent's in, heartbeats both ways, until either side ends it.
   */
  async *serve(
    peer: SessionPeer,
    requests: AsyncIterable<SessionRequest>,
    signal: AbortSignal,
  ): AsyncGenerator<ResponseInit> {
    const it = requests[Symbol.asyncIterator]();
    const first = await it.next();
    const hello = first.done ? undefined : first.value.kind;
    if (hello?.case !== "hello") throw new ProtocolError("SESSION_INVALID", "a session starts with Hello");
    if (hello.value.nodeId !== peer.name)
      throw new ProtocolError(
        "SESSION_INVALID",
        "Hello.node_id must be the client certificate's participant",
      );
    const out = new MessageQueue<ResponseInit>(16);
    let ended: ProtocolError | null = null;
    const link: SessionLink = {
      send: (m) =>
        out.closed ? Promise.reject(new ProtocolError("AGENT_DISCONNECTED", "session ended")) : out.push(m),
      close: (reason) => {
        ended ??= reason;
        out.end();
      },
    };
    const agent = this.agent(peer.name);
    agent.attach(link, peer.publicKey);
    const hb = this.o.heartbeatSeconds ?? 5;
    await out.push({
      kind: {
        case: "welcome",
        value: {
          coordinatorId: this.o.coordinatorId,
          heartbeatSeconds: hb,
          maxChunkBytes: this.o.maxChunkBytes,
        },
      },
    });
    this.log.info({ node: peer.name }, "agent session opened");
    let lastSeen = Date.now();
    const silence = this.o.silenceMs ?? 4 * hb * 1000;
    const heartbeat = setInterval(() => {
      // An agent that trains may not answer heartbeats until it is done (its event loop is
      // busy): then the run's deadline decides, not silence.
      if (agent.busy) lastSeen = Math.max(lastSeen, Date.now() - silence / 2);
      if (Date.now() - lastSeen > silence)
        link.close(new ProtocolError("AGENT_DISCONNECTED", `no message for ${silence} ms`));
      else void out.push({ kind: { case: "heartbeat", value: { sentAtMs: BigInt(Date.now()) } } });
    }, hb * 1000);
    const reattest = setInterval(
      () => void this.admit(agent).catch(() => undefined),
      Math.max(1000, this.o.reattestSeconds * 900),
    );
    const onAbort = () => link.close(new ProtocolError("AGENT_DISCONNECTED", "the stream was cancelled"));
    signal.addEventListener("abort", onAbort, { once: true });
    const reading = (async () => {
      try {
        for (let r = await it.next(); !r.done; r = await it.next()) {
          lastSeen = Date.now();
          agent.receive(link, r.value);
        }
        link.close(new ProtocolError("AGENT_DISCONNECTED", "the agent ended the session"));
      } catch {
        link.close(new ProtocolError("AGENT_DISCONNECTED", "the agent's stream broke"));
      }
    })();
    void this.admit(agent).catch(() => undefined);
    try {
      yield* out;
    } finally {
      clearInterval(heartbeat);
      clearInterval(reattest);
      signal.removeEventListener("abort", onAbort);
      out.end();
      agent.detach(link, (ended as ProtocolError | null)?.code ?? "closed");
      this.notify();
      this.log.info(
        { node: peer.name, reason: (ended as ProtocolError | null)?.message },
        "agent session closed",
      );
      void reading;
    }
  }

  private notify(): void {
    for (const wake of [...this.changed]) wake();
  }
}
