import type { ChildProcess } from "node:child_process";
import type { Duplex } from "node:stream";
import { FrameDecoder } from "../channel/frames.js";
import { RuntimeError, RuntimeErrorCode } from "../errors.js";
import { GuestConnection, type GuestMessage, type VmExit } from "./guest-connection.js";

export type GuestReady = Extract<GuestMessage, { type: "ready" }>;
export type GuestEvent = Extract<GuestMessage, { type: "event" }>;

/** A guest that announced itself: its channel, its lifetime, and how to end it. */
export interface GuestSession {
  ready: GuestReady;
  connection: GuestConnection;
  /** Spawn to `ready`. */
  bootMs: number;
  /** Resolves when the guest's process (the VMM, or the guest process itself) ends. */
  exited: Promise<VmExit>;
  stop(): Promise<void>;
}

export interface GuestSessionOptions {
  child: ChildProcess;
  /** Resolves with the channel's host end once the guest side is connected. */
  channel: Promise<Duplex>;
  /** What the child is, in errors: "the microVM" or "the guest process". */
  what: string;
  /** The program spawned, for VMM_START_FAILED. */
  program: string;
  bootTimeoutMs: number;
  started: number;
  onEvent?: (event: GuestEvent) => void;
  /** Runs once after the child has ended (temporary files, listening sockets). */
  cleanup?: () => Promise<void>;
}

/** `ready` as the guest must send it: its Node.js version and at most 64 interface names. */
function isReady(m: Record<string, unknown>): m is GuestReady {
  const names = m.interfaces;
  return (
    m.type === "ready" &&
    typeof m.node === "string" &&
    m.node.length <= 64 &&
    Array.isArray(names) &&
    names.length <= 64 &&
    names.every((n) => typeof n === "string" && n.length <= 64)
  );
}

/**
 * Speak the channel protocol with a guest the caller has just spawned: wait for its `ready` within
 * the deadline, then hand out the connection. A crash, a missed deadline or a protocol violation is
 * a typed error, and the child is killed; the guest's stderr is never echoed (it is untrusted), except
 * the VMM's own first line when it dies before any guest spoke.
 */
export async function startGuestSession(o: GuestSessionOptions): Promise<GuestSession> {
  const { child } = o;
  let stopping = false;
  let stderrTail = "";
  const exited = new Promise<VmExit>((resolve) => {
    child.once("close", (code, signal) => resolve({ code, signal }));
    child.once("error", () => resolve({ code: null, signal: null }));
  });
  child.stderr?.on("data", (d: Buffer) => (stderrTail = (stderrTail + d.toString("utf8")).slice(-2048)));
  let cleaned: Promise<void> | undefined;
  const stop = async () => {
    stopping = true;
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
    await (cleaned ??= o.cleanup?.() ?? Promise.resolve());
  };

  let connection: GuestConnection | undefined;
  const decoder = new FrameDecoder();
  const booted = new Promise<GuestReady>((resolve, reject) => {
    const broken = (err: RuntimeError) => {
      connection?.end(err);
      reject(err);
      void stop();
    };
    void o.channel.then((socket) => {
      // A guest that breaks the protocol is not talked to again: it is stopped.
      connection = new GuestConnection(
        (f) => socket.write(f),
        (e) => o.onEvent?.(e),
        () => void stop(),
      );
      let ready = false;
      socket.on("data", (chunk: Buffer) => {
        let messages;
        try {
          messages = decoder.push(chunk);
        } catch (err) {
          return broken(err as RuntimeError);
        }
        for (const m of messages) {
          if (ready) connection!.receive(m);
          else if (!isReady(m))
            return broken(
              new RuntimeError(RuntimeErrorCode.CHANNEL_PROTOCOL, "the guest's first message was not ready"),
            );
          else {
            ready = true;
            resolve(m);
          }
        }
      });
      socket.on("error", () => undefined);
    }, reject);
    void exited.then((x) => {
      const how = x.signal ? `signal ${x.signal}` : `exit status ${x.code}`;
      const why = stopping
        ? new RuntimeError(RuntimeErrorCode.GUEST_CRASHED, `${o.what} was stopped`)
        : x.code === null && x.signal === null
          ? new RuntimeError(RuntimeErrorCode.VMM_START_FAILED, `cannot start ${o.program}`)
          : new RuntimeError(
              RuntimeErrorCode.GUEST_CRASHED,
              `${o.what} ended (${how}) before the guest finished`,
            );
      connection?.end(why);
      if (stderrTail.trim() && !connection)
        why.message += `: ${stderrTail
          .trim()
          .split("\n")[0]!
          .replace(/^qemu-system-x86_64: /, "")}`;
      reject(why);
    });
  });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new RuntimeError(
            RuntimeErrorCode.GUEST_TIMEOUT,
            `the guest was not ready within ${o.bootTimeoutMs} ms`,
          ),
        ),
      o.bootTimeoutMs,
    );
  });
  try {
    const ready = await Promise.race([booted, deadline]);
    return {
      ready,
      connection: connection!,
      bootMs: Math.round(performance.now() - o.started),
      exited,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
