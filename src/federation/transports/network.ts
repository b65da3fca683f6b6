import { EnclaveError } from "../../errors.js";
import type { SessionRequest } from "../../gen/agent/v1/session_pb.js";
import { silentLogger, type Logger } from "../../logging/logger.js";
import type { AttestationReport } from "../../schemas/attestation.js";
import type { AgentHandle, BoundEvidence } from "../agent-handle.js";
import "../error-classes.js";
import { ProtocolError } from "../errors.js";
import { sendTransfer, TransferReceiver, DEFAULT_CHUNK_BYTES } from "../model-transfer.js";
import type { BudgetProbe, TaskOutcome, TrainTask } from "../task.js";
import { checkProbe, decodeOutcome, encodeTask, outcomeParts } from "../task-wire.js";
import { chunkFromWire, chunkToWire, evidenceFromWire, type ResponseInit } from "./session-wire.js";

/** The coordinator's end of one agent session: where its messages go. */
export interface SessionLink {
  /** Send a message to the agent; resolves when the stream has room again. */
  send(message: ResponseInit): Promise<void>;
  /** End the session (the agent sees the stream end and reconnects). */
  close(reason: ProtocolError): void;
}

export interface RemoteAgentOptions {
  /** Deadline of a challenge or a budget probe (ms). Default 60 s. */
  callTimeoutMs?: number;
  /** Deadline of a run, the round's deadline for this agent (ms). Default 10 min. */
  runTimeoutMs?: number;
  /** Largest part of an update the agent may send, in bytes (default: 4x the global's size + 1 MiB). */
  maxUpdateBytes?: (task: TrainTask, globalBytes: number) => number;
  chunkBytes?: number;
  logger?: Logger;
}

type Call =
  | { kind: "evidence"; resolve: (v: BoundEvidence) => void }
  | { kind: "probe"; resolve: (v: BudgetProbe) => void }
  | {
      kind: "run";
      resolve: (v: TaskOutcome) => void;
      maxBytes: number;
      receiver?: TransferReceiver;
      json?: string;
    };

type Pending = Call & { reject: (e: Error) => void; timer: NodeJS.Timeout };

const DEFAULTS = { callTimeoutMs: 60_000, runTimeoutMs: 600_000 };

/**
 * An agent reached over its dial-out session (agent.v1.AgentService/Session), behind the same
 * AgentHandle as an in-process or worker agent, so `runFederation` is the same code. The handle
 * outlives sessions: when the agent reconnects (a restart, a network blip) the new session is
 * attached to the same handle, and the next round reaches it.
 *
 * Every call carries a request id and a deadline. A reply to a call that is no longer pending
 * (past its deadline, from a replaced session, or a second reply) is discarded and counted, so a
 * late or duplicate update is never aggregated. A session that ends rejects its calls at once
 * (AGENT_DISCONNECTED): an agent killed mid-round leaves the round without holding it up.
 */
export class RemoteAgent implements AgentHandle {
  private link: SessionLink | null = null;
  private key: Uint8Array | undefined;
  private nextId = 1n;
  private readonly pending = new Map<bigint, Pending>();
  private readonly transfers = new Map<string, bigint>();
  private trust: { until: number } | { refused: string } = { refused: "not attested yet" };
  private readonly log: Logger;
  /** Replies discarded: late (past the deadline), unknown, or duplicate. */
  discarded = 0;

  constructor(
    readonly id: string,
    private readonly o: RemoteAgentOptions = {},
  ) {
    this.log = (o.logger ?? silentLogger).child({ component: "remote-agent", node: id });
  }

  /**
   * The public key (SPKI DER) of the TLS client certificate of the current session: the key the
   * evidence must bind. The agent's own claim about its key is never used for the binding.
   */
  get channelKey(): Uint8Array | undefined {
    return this.key;
  }

  /** A run is in flight: its deadline, not heartbeat silence, decides when the agent is gone. */
  get busy(): boolean {
    for (const p of this.pending.values()) if (p.kind === "run") return true;
    return false;
  }

  get connected(): boolean {
    return this.link !== null;
  }

  /** Whether the last attestation was trusted and has not lapsed. */
  get trusted(): boolean {
    return "until" in this.trust && Date.now() < this.trust.until;
  }

  /** A new session for this agent; a previous one is closed and its calls rejected. */
  attach(link: SessionLink, tlsKey: Uint8Array): void {
    const old = this.link;
    this.link = link;
    this.key = tlsKey;
    this.trust = { refused: "not attested in this session" };
    if (old) {
      this.failAll("AGENT_DISCONNECTED", "the agent opened a new session");
      old.close(new ProtocolError("AGENT_DISCONNECTED", "replaced by a newer session of the same node"));
    }
  }

  /** The session behind `link` ended; calls in flight fail now. */
  detach(link: SessionLink, why: string): void {
    if (this.link !== link) return;
    this.link = null;
    this.trust = { refused: "disconnected" };
    this.failAll("AGENT_DISCONNECTED", `session ended (${why})`);
  }

  /** Record an attestation verdict: trusted for `validForMs`, or refused from now on. */
  attested(report: AttestationReport | null, validForMs: number, why = "attestation not trusted"): void {
    this.trust = report?.status === "TRUSTED" ? { until: Date.now() + validForMs } : { refused: why };
  }

  /** Tell the agent the verdict on its evidence (status, or why it was refused; never data). */
  tell(status: string, refused = ""): void {
    void this.link?.send({ kind: { case: "verdict", value: { status, refused } } }).catch(() => undefined);
  }

  evidence(nonce: Uint8Array): Promise<BoundEvidence> {
    return this.call("evidence", this.o.callTimeoutMs ?? DEFAULTS.callTimeoutMs, (id) =>
      this.send({ kind: { case: "challenge", value: { requestId: id, nonce } } }),
    );
  }

  probe(task: TrainTask): Promise<BudgetProbe> {
    this.checkTrust();
    const { json } = encodeTask(task, false);
    return this.call("probe", this.o.callTimeoutMs ?? DEFAULTS.callTimeoutMs, (id) =>
      this.send({ kind: { case: "task", value: { requestId: id, action: "probe", taskJson: json } } }),
    );
  }

  run(task: TrainTask): Promise<TaskOutcome> {
    this.checkTrust();
    const { json, parts } = encodeTask(task);
    const chunkBytes = this.o.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    let globalBytes = 0;
    for (const t of task.global.values()) globalBytes += t.data.byteLength;
    const maxBytes = this.o.maxUpdateBytes?.(task, globalBytes) ?? 4 * globalBytes + (1 << 20);
    return this.call(
      "run",
      this.o.runTimeoutMs ?? DEFAULTS.runTimeoutMs,
      async (id) => {
        const transferId = `g${id}`;
        await this.send({
          kind: { case: "task", value: { requestId: id, action: "run", taskJson: json, transferId } },
        });
        await sendTransfer(
          transferId,
          parts,
          (c) => this.send({ kind: { case: "globalChunk", value: chunkToWire(c) } }),
          chunkBytes,
        );
      },
      { maxBytes },
    );
  }

  async close(): Promise<void> {
    // The handle stays usable: the session belongs to the agent, which may come back.
  }

  /** A message from the agent on `link`. Malformed messages end the session. */
  receive(link: SessionLink, message: SessionRequest): void {
    if (link !== this.link) return;
    try {
      this.dispatch(message);
    } catch (err) {
      const e =
        err instanceof ProtocolError
          ? err
          : new ProtocolError("SESSION_INVALID", "malformed session message");
      this.log.warn({ code: e.code }, `session closed: ${e.message}`);
      link.close(e);
      this.detach(link, e.code);
    }
  }

  private dispatch(message: SessionRequest): void {
    const k = message.kind;
    switch (k.case) {
      case "evidence": {
        const p = this.take(k.value.requestId, "evidence");
        if (!p) return;
        const m = k.value.runtimeMeasurement;
        if (m.length !== 0 && m.length !== 32)
          throw new ProtocolError(
            "SESSION_INVALID",
            "evidence.runtime_measurement: must be empty or 32 bytes",
          );
        p.resolve({
          evidence: evidenceFromWire(k.value),
          publicKey: k.value.publicKey,
          ...(m.length ? { runtimeMeasurement: m } : {}),
        });
        return;
      }
      case "probe": {
        const p = this.take(k.value.requestId, "probe");
        if (!p) return;
        const v = k.value;
        p.resolve(
          checkProbe({
            epsilon: v.epsilon,
            nextEpsilon: v.nextEpsilon,
            limit: v.limit,
            examples: Number(v.examples),
          }),
        );
        return;
      }
      case "outcome":
        return this.outcome(k.value.requestId, k.value.outcomeJson, k.value.transferId);
      case "updateChunk":
        return this.chunk(k.value);
      case "failure": {
        const p = this.pending.get(k.value.requestId);
        if (!p) return this.discard("failure");
        this.settle(k.value.requestId);
        const f = k.value;
        p.reject(EnclaveError.fromWire({ name: f.name, code: f.code, message: f.message }));
        return;
      }
      case "heartbeat":
        return;
      default:
        throw new ProtocolError("SESSION_INVALID", `unexpected message ${k.case ?? "(empty)"}`);
    }
  }

  private outcome(requestId: bigint, json: string, transferId: string): void {
    const p = this.pending.get(requestId);
    if (!p || p.kind !== "run" || p.json !== undefined) return this.discard("outcome");
    if (!this.trusted) {
      this.settle(requestId);
      p.reject(new ProtocolError("SESSION_INVALID", "update refused: the agent's attestation lapsed"));
      return;
    }
    if (this.transfers.has(transferId) || transferId.length === 0 || transferId.length > 64)
      throw new ProtocolError("TRANSFER_INVALID", "outcome: transfer_id missing, too long or reused");
    p.json = json;
    p.receiver = new TransferReceiver(transferId, outcomeParts(json), p.maxBytes);
    this.transfers.set(transferId, requestId);
  }

  private chunk(wire: Parameters<typeof chunkFromWire>[0]): void {
    const requestId = this.transfers.get(wire.transferId);
    const p = requestId === undefined ? undefined : this.pending.get(requestId);
    if (requestId === undefined || !p || p.kind !== "run" || !p.receiver) return this.discard("update chunk");
    let parts;
    try {
      parts = p.receiver.add(chunkFromWire(wire));
    } catch (err) {
      this.settle(requestId);
      p.reject(err as Error);
      return;
    }
    if (!parts) return;
    this.settle(requestId);
    try {
      p.resolve(decodeOutcome(this.id, p.json!, parts));
    } catch (err) {
      p.reject(err as Error);
    }
  }

  private checkTrust(): void {
    if (!this.trusted)
      throw new ProtocolError(
        "AGENT_NOT_CONNECTED",
        `no task for ${this.id}: ${"refused" in this.trust ? this.trust.refused : "attestation lapsed"}`,
      );
  }

  private call<T>(
    kind: Call["kind"],
    timeoutMs: number,
    start: (id: bigint) => Promise<void>,
    extra: Record<string, unknown> = {},
  ): Promise<T> {
    if (!this.link)
      return Promise.reject(new ProtocolError("AGENT_NOT_CONNECTED", `agent ${this.id} holds no session`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.settle(id)) return;
        this.log.warn({ code: "AGENT_DEADLINE", call: kind, ms: timeoutMs }, "agent missed the deadline");
        reject(
          new ProtocolError("AGENT_DEADLINE", `agent ${this.id}: no ${kind} reply within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.pending.set(id, { kind, resolve, reject, timer, ...extra } as Pending);
      start(id).catch((err: unknown) => {
        if (this.settle(id)) reject(err instanceof Error ? err : new Error(String(err)));
      });
    });
  }

  /** The pending call `id` of `kind`, removed; null (and counted) when there is none. */
  private take<K extends Call["kind"]>(id: bigint, kind: K): Extract<Pending, { kind: K }> | null {
    const p = this.pending.get(id);
    if (!p || p.kind !== kind) {
      this.discard(kind);
      return null;
    }
    this.settle(id);
    return p as Extract<Pending, { kind: K }>;
  }

  private settle(id: bigint): boolean {
    const p = this.pending.get(id);
    if (!p) return false;
    clearTimeout(p.timer);
    this.pending.delete(id);
    if (p.kind === "run" && p.receiver) this.transfers.delete(p.receiver.transferId);
    return true;
  }

  private discard(what: string): void {
    this.discarded++;
    this.log.info({ code: "REPLY_DISCARDED", what }, "a late, unknown or duplicate reply was discarded");
  }

  private failAll(code: "AGENT_DISCONNECTED", message: string): void {
    for (const [id, p] of [...this.pending]) {
      this.settle(id);
      p.reject(new ProtocolError(code, `agent ${this.id}: ${message}`));
    }
  }

  private send(message: ResponseInit): Promise<void> {
    if (!this.link)
      return Promise.reject(new ProtocolError("AGENT_DISCONNECTED", `agent ${this.id} holds no session`));
    return this.link.send(message);
  }
}
