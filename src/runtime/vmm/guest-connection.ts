import { GuestReportedError, RuntimeError, RuntimeErrorCode } from "../errors.js";
import { encodeFrame } from "../channel/frames.js";

/** A message from the guest. `ready` comes first, once; `event` any time; `reply` answers a request. */
export type GuestMessage =
  | { type: "ready"; node: string; interfaces: string[] }
  | { type: "event"; event: string; [k: string]: unknown }
  | { type: "reply"; id: number; ok: true; value: unknown }
  | { type: "reply"; id: number; ok: false; error: { code: string; message: string } };

/** How the VM ended: the VMM's exit code or signal. */
export interface VmExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

/**
 * Requests and replies over the channel, with the VM's lifetime folded in: when the VM exits or the
 * channel breaks, every pending request fails with a typed error at once; a request that outlives its
 * deadline fails with GUEST_TIMEOUT (the caller then stops the VM).
 */
export class GuestConnection {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  private ended: RuntimeError | undefined;

  constructor(
    private readonly write: (frame: Buffer) => void,
    private readonly onEvent: (e: Extract<GuestMessage, { type: "event" }>) => void,
    /** Called once when the guest breaks the protocol: the VMM stops the VM. */
    private readonly onProtocolError: (e: RuntimeError) => void = () => undefined,
  ) {}

  /** One decoded message from the guest, after `ready`. */
  receive(m: Record<string, unknown>): void {
    if (m.type === "event" && typeof m.event === "string")
      return this.onEvent(m as Extract<GuestMessage, { type: "event" }>);
    if (m.type !== "reply" || typeof m.id !== "number")
      return this.end(this.protocol("unexpected message from the guest"));
    const p = this.pending.get(m.id);
    if (!p) return this.end(this.protocol("reply to no pending request"));
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.ok === true) return p.resolve(m.value);
    const err = (m.error ?? {}) as { code?: unknown; message?: unknown };
    // The guest is untrusted: its code must look like one of ours, and its message is bounded.
    const code =
      typeof err.code === "string" && CODE.test(err.code) ? err.code : RuntimeErrorCode.GUEST_TASK_FAILED;
    const message = typeof err.message === "string" ? err.message.slice(0, 500) : "guest task failed";
    p.reject(new GuestReportedError(code as RuntimeErrorCode, `guest: ${message}`));
  }

  request<T>(method: string, args: unknown, timeoutMs: number): Promise<T> {
    if (this.ended) return Promise.reject(this.ended);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new RuntimeError(
            RuntimeErrorCode.GUEST_TIMEOUT,
            `guest did not answer ${method} within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.write(encodeFrame({ type: "request", id, method, args }));
    });
  }

  /** Fail everything pending with `error`; later requests fail with it too. */
  end(error: RuntimeError): void {
    if (!this.ended) this.ended = error;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(error);
    }
    this.pending.clear();
  }

  private protocol(message: string): RuntimeError {
    const err = new RuntimeError(RuntimeErrorCode.CHANNEL_PROTOCOL, message);
    if (!this.ended) this.onProtocolError(err);
    return err;
  }
}
