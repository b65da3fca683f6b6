import { EnclaveError, type WireError } from "../../errors.js";
import type { AgentHandle, BoundEvidence } from "../agent-handle.js";
import "../error-classes.js";
import { ProtocolError, type ProtocolErrorCode } from "../errors.js";
import type { BudgetProbe, TaskOutcome, TrainTask } from "../task.js";

export type AgentMethod = "evidence" | "probe" | "run" | "close";

/** A call to the agent end. Request id 0 is reserved for the agent's "ready" (or start failure). */
export interface AgentRequest {
  id: number;
  method: AgentMethod;
  args?: unknown;
}

export type AgentResponse =
  { id: number; ok: true; value: unknown } | { id: number; ok: false; error: WireError };

/**
 * A duplex message channel between the coordinator's handle and the agent: a worker_threads
 * port today; anything that carries structured-clonable messages both ways (a vsock to a
 * microVM, say) can stand in. Messages are tasks and outcomes only: no data value crosses.
 */
export interface AgentChannel {
  postMessage(message: unknown): void;
  on(event: "message", listener: (message: unknown) => void): unknown;
}

/**
 * The coordinator's end: an AgentHandle whose calls travel as messages. Errors come back as the
 * same EnclaveError subclass and code (EnclaveError.fromWire).
 */
export class ChannelAgent implements AgentHandle {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly started: Promise<void>;

  constructor(
    readonly id: string,
    private readonly channel: AgentChannel,
  ) {
    this.started = new Promise<void>((resolve, reject) =>
      this.pending.set(0, { resolve: () => resolve(), reject }),
    );
    channel.on("message", (message) => this.settle(message));
  }

  /** Resolves once the agent end reports it started (rejects with its start error). */
  ready(): Promise<void> {
    return this.started;
  }

  /** Rejects every call in flight (the channel broke). */
  fail(code: ProtocolErrorCode, message: string): void {
    for (const p of this.pending.values()) p.reject(new ProtocolError(code, message));
    this.pending.clear();
  }

  evidence(nonce: Uint8Array): Promise<BoundEvidence> {
    return this.call("evidence", nonce);
  }

  probe(task: TrainTask): Promise<BudgetProbe> {
    return this.call("probe", task);
  }

  run(task: TrainTask): Promise<TaskOutcome> {
    return this.call("run", task);
  }

  async close(): Promise<void> {
    await this.call("close");
  }

  private settle(message: unknown): void {
    const res = message as Partial<AgentResponse>;
    if (typeof res !== "object" || res === null || typeof res.id !== "number") return;
    const p = this.pending.get(res.id);
    if (!p) return;
    this.pending.delete(res.id);
    if (res.ok === true) p.resolve((res as { value: unknown }).value);
    else p.reject(EnclaveError.fromWire((res as { error?: unknown }).error));
  }

  private call<T>(method: AgentMethod, args?: unknown): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.channel.postMessage({ id, method, args } satisfies AgentRequest);
    });
  }
}

/** An error as the agent end sends it: typed errors keep their class and code; others say nothing. */
export function agentErrorToWire(err: unknown): WireError {
  return err instanceof EnclaveError
    ? err.toWire()
    : { name: "ProtocolError", code: "AGENT_INTERNAL", message: "internal agent error" };
}

const METHODS = new Set<AgentMethod>(["evidence", "probe", "run", "close"]);

/**
 * The agent's end: answers the coordinator's calls on `channel` with `agent` (once it has
 * started). `closed` runs after a close call is answered.
 */
export function serveAgent(agent: Promise<AgentHandle>, channel: AgentChannel, closed: () => void): void {
  agent.then(
    () => channel.postMessage({ id: 0, ok: true, value: "ready" } satisfies AgentResponse),
    (err) => channel.postMessage({ id: 0, ok: false, error: agentErrorToWire(err) } satisfies AgentResponse),
  );
  channel.on("message", async (message) => {
    const req = message as Partial<AgentRequest>;
    if (typeof req !== "object" || req === null || typeof req.id !== "number") return;
    const id = req.id;
    try {
      if (!METHODS.has(req.method as AgentMethod))
        throw new ProtocolError("AGENT_MESSAGE_INVALID", "unknown agent method");
      const a = await agent;
      let value: unknown = null;
      if (req.method === "evidence") value = await a.evidence(req.args as Uint8Array);
      else if (req.method === "probe") value = await a.probe(req.args as TrainTask);
      else if (req.method === "run") value = await a.run(req.args as TrainTask);
      else await a.close();
      channel.postMessage({ id, ok: true, value } satisfies AgentResponse);
      if (req.method === "close") closed();
    } catch (err) {
      channel.postMessage({ id, ok: false, error: agentErrorToWire(err) } satisfies AgentResponse);
    }
  });
}
