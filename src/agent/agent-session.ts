import type { BoundEvidence } from "../federation/agent-handle.js";
import { ProtocolError } from "../federation/errors.js";
import { sendTransfer, TransferReceiver, DEFAULT_CHUNK_BYTES } from "../federation/model-transfer.js";
import type { BudgetProbe, TaskOutcome, TrainTask } from "../federation/task.js";
import { decodeTask, encodeOutcome, taskParts } from "../federation/task-wire.js";
import { agentErrorToWire } from "../federation/transports/channel.js";
import { MessageQueue } from "../federation/transports/message-queue.js";
import {
  chunkFromWire,
  chunkToWire,
  evidenceToWire,
  type RequestInit,
} from "../federation/transports/session-wire.js";
import type { SessionResponse, TaskOffer } from "../gen/agent/v1/session_pb.js";
import { certificatePublicKey } from "../identity/certificates.js";
import type { Kit } from "../identity/kit.js";
import { silentLogger, type Logger } from "../logging/logger.js";
import { adminClient } from "../sdk/admin-client.js";

/** What the session asks of the agent: evidence bound to a key, budget probes, rounds. */
export interface SessionWork {
  evidence(nonce: Uint8Array, key: Uint8Array): Promise<BoundEvidence>;
  probe(task: TrainTask): Promise<BudgetProbe>;
  run(task: TrainTask): Promise<TaskOutcome>;
}

export interface AgentSessionOptions {
  /** The site's startup kit: its certificate and key, the project CA, the coordinator's address. */
  kit: Kit;
  /** The coordinator (default: the one the kit names). */
  endpoint?: string;
  work: SessionWork;
  logger?: Logger;
  /** Reconnect backoff: first delay and cap (ms). Default 500 ms doubling to 30 s, with jitter. */
  backoff?: { initialMs: number; maxMs: number };
  /** Largest part of a global model the agent takes (bytes). Default 2 GiB. */
  maxModelBytes?: number;
  agentVersion?: string;
}

export type SessionState = "connecting" | "connected" | "stopped";

interface Receiving {
  offer: TaskOffer;
  receiver: TransferReceiver;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });

/**
 * The agent's end of agent.v1.AgentService/Session: it dials the coordinator its kit names over
 * mTLS (the coordinator's certificate must be the project CA's and name the kit's coordinator),
 * says Hello, and then answers: challenges with evidence whose report data binds the nonce and
 * the public key of this agent's own TLS client certificate; probes; runs, taking the global
 * model in chunks (SHA-256 checked) and sending the update the same way. It heartbeats, and
 * reconnects with capped exponential backoff whenever the session ends. Sites never listen.
 */
export class AgentSession {
  private readonly stopper = new AbortController();
  private readonly tlsKey: Uint8Array;
  private readonly log: Logger;
  private loop: Promise<void> | null = null;
  state: SessionState = "connecting";
  /** Sessions opened (Welcome received) since start. */
  sessions = 0;
  /** Requests being worked on (a round's training keeps the event loop busy). */
  private busy = 0;

  constructor(private readonly o: AgentSessionOptions) {
    this.tlsKey = certificatePublicKey(o.kit.credential.certPem);
    this.log = (o.logger ?? silentLogger).child({ component: "session", node: o.kit.identity.name });
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    await this.loop;
    this.state = "stopped";
  }

  private async run(): Promise<void> {
    const { initialMs, maxMs } = this.o.backoff ?? { initialMs: 500, maxMs: 30_000 };
    let delay = initialMs;
    while (!this.stopper.signal.aborted) {
      this.state = "connecting";
      const welcomed = await this.once();
      if (this.stopper.signal.aborted) break;
      if (welcomed) delay = initialMs;
      const wait = Math.round(delay * (0.8 + 0.4 * Math.random()));
      this.log.info({ code: "RECONNECTING", in_ms: wait }, "session ended; reconnecting");
      await sleep(wait, this.stopper.signal);
      delay = Math.min(maxMs, delay * 2);
    }
  }

  /** One session, from dialling to its end; true when the coordinator welcomed it. */
  private async once(): Promise<boolean> {
    const call = new AbortController();
    const stop = () => call.abort();
    this.stopper.signal.addEventListener("abort", stop, { once: true });
    const out = new MessageQueue<RequestInit>(16);
    const receiving = new Map<string, Receiving>();
    let welcomed = false;
    let lastSeen = Date.now();
    let watchdog: NodeJS.Timeout | undefined;
    let heartbeat: NodeJS.Timeout | undefined;
    try {
      void out.push({
        kind: {
          case: "hello",
          value: { nodeId: this.o.kit.identity.name, agentVersion: this.o.agentVersion ?? "" },
        },
      });
      const client = adminClient(this.o.kit, this.o.endpoint);
      for await (const res of client.session(out, { signal: call.signal })) {
        lastSeen = Date.now();
        if (res.kind.case === "welcome") {
          if (welcomed) throw new ProtocolError("SESSION_INVALID", "a second Welcome");
          welcomed = true;
          this.sessions++;
          this.state = "connected";
          const hb = Math.min(3600, Math.max(1, res.kind.value.heartbeatSeconds || 5)) * 1000;
          heartbeat = setInterval(
            () => void out.push({ kind: { case: "heartbeat", value: { sentAtMs: BigInt(Date.now()) } } }),
            hb,
          );
          watchdog = setInterval(() => {
            // After a long training step the coordinator's heartbeats wait unread behind this
            // timer: silence while busy proves nothing.
            if (this.busy > 0) lastSeen = Date.now();
            if (Date.now() - lastSeen > 4 * hb) {
              this.log.warn({ code: "COORDINATOR_SILENT" }, "no message from the coordinator; reconnecting");
              call.abort();
            }
          }, hb);
          this.log.info({ coordinator: res.kind.value.coordinatorId }, "session opened");
          continue;
        }
        if (!welcomed)
          throw new ProtocolError("SESSION_INVALID", "the coordinator did not say Welcome first");
        this.handle(res, out, receiving);
      }
      this.log.info({ code: "SESSION_ENDED" }, "the coordinator ended the session");
    } catch (err) {
      if (!this.stopper.signal.aborted)
        this.log.warn(
          { code: (err as { code?: unknown }).code, reason: (err as Error).message?.slice(0, 300) },
          "session failed",
        );
    } finally {
      clearInterval(heartbeat);
      clearInterval(watchdog);
      this.stopper.signal.removeEventListener("abort", stop);
      out.end();
      call.abort();
    }
    return welcomed;
  }

  private handle(
    res: SessionResponse,
    out: MessageQueue<RequestInit>,
    receiving: Map<string, Receiving>,
  ): void {
    const k = res.kind;
    switch (k.case) {
      case "challenge": {
        const { requestId, nonce } = k.value;
        return this.answer(out, requestId, async () => {
          const { evidence, publicKey, runtimeMeasurement } = await this.o.work.evidence(nonce, this.tlsKey);
          await out.push({
            kind: {
              case: "evidence",
              value: { requestId, publicKey, runtimeMeasurement, ...evidenceToWire(evidence) },
            },
          });
        });
      }
      case "verdict": {
        const v = k.value;
        const fields = { status: v.status, failed_checks: v.failedChecks, refused: v.refused || undefined };
        if (v.status === "TRUSTED") this.log.info(fields, "admitted by the coordinator");
        else this.log.warn(fields, "the coordinator refused this agent's attestation");
        return;
      }
      case "task":
        return this.task(k.value, out, receiving);
      case "globalChunk": {
        const r = receiving.get(k.value.transferId);
        if (!r) throw new ProtocolError("TRANSFER_INVALID", "a model chunk of no announced transfer");
        let parts;
        try {
          parts = r.receiver.add(chunkFromWire(k.value));
        } catch (err) {
          receiving.delete(r.offer.transferId);
          return this.answer(out, r.offer.requestId, () => Promise.reject(err));
        }
        if (!parts) return;
        receiving.delete(r.offer.transferId);
        return this.answer(out, r.offer.requestId, async () => {
          const outcome = await this.o.work.run(decodeTask(r.offer.taskJson, parts));
          const { json, parts: update } = encodeOutcome(outcome);
          const transferId = `u${r.offer.requestId}`;
          await out.push({
            kind: { case: "outcome", value: { requestId: r.offer.requestId, outcomeJson: json, transferId } },
          });
          await sendTransfer(
            transferId,
            update,
            (c) => out.push({ kind: { case: "updateChunk", value: chunkToWire(c) } }),
            DEFAULT_CHUNK_BYTES,
          );
        });
      }
      case "heartbeat":
        return;
      default:
        throw new ProtocolError("SESSION_INVALID", `unexpected message ${k.case ?? "(empty)"}`);
    }
  }

  private task(offer: TaskOffer, out: MessageQueue<RequestInit>, receiving: Map<string, Receiving>): void {
    if (offer.action === "probe")
      return this.answer(out, offer.requestId, async () => {
        const p = await this.o.work.probe(decodeTask(offer.taskJson, new Map()));
        await out.push({
          kind: {
            case: "probe",
            value: {
              requestId: offer.requestId,
              epsilon: p.epsilon,
              nextEpsilon: p.nextEpsilon,
              limit: p.limit,
              examples: BigInt(p.examples),
            },
          },
        });
      });
    if (offer.action !== "run" || !offer.transferId || receiving.size >= 2)
      return this.answer(out, offer.requestId, () =>
        Promise.reject(
          new ProtocolError("SESSION_INVALID", "task: unknown action, no transfer, or too many"),
        ),
      );
    try {
      const parts = taskParts(offer.taskJson);
      receiving.set(offer.transferId, {
        offer,
        receiver: new TransferReceiver(offer.transferId, parts, this.o.maxModelBytes ?? 2 ** 31),
      });
    } catch (err) {
      this.answer(out, offer.requestId, () => Promise.reject(err));
    }
  }

  /** Run `work` for request `requestId`; its failure goes back as a Failure (code, never data). */
  private answer(out: MessageQueue<RequestInit>, requestId: bigint, work: () => Promise<void>): void {
    this.busy++;
    const done = work().finally(() => this.busy--);
    done.catch((err: unknown) => {
      const w = agentErrorToWire(err);
      this.log.warn({ code: w.code, request: String(requestId) }, "request failed");
      void out.push({
        kind: { case: "failure", value: { requestId, name: w.name, code: w.code, message: w.message } },
      });
    });
  }
}
