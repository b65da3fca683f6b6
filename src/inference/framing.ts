import type { Duplex } from "node:stream";
import { InferenceError } from "./errors.js";

/**
 * One framing for every transport and every message: a 4-byte big-endian length, then that many
 * bytes of payload (a UTF-8 JSON object followed by "\n", so a stream of frames read back to back
 * is NDJSON). The receiver refuses a frame longer than its bound from the header alone, before
 * buffering any of it, and reassembles frames from reads of any size: a read never has to carry a
 * whole frame, and a peer that closes in the middle of one is reported as FRAME_TRUNCATED.
 */
export const FRAME_HEADER_BYTES = 4;
/** Default bound on one frame's payload: room for a large batch of rows, far from exhausting memory. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** The hard ceiling any configuration may choose (the header could say up to 4 GiB). */
export const MAX_FRAME_BYTES_CEILING = 256 * 1024 * 1024;

function tooLarge(length: number, max: number): InferenceError {
  return new InferenceError("FRAME_TOO_LARGE", `frame of ${length} bytes exceeds the limit of ${max} bytes`);
}

export function encodeFrame(payload: Uint8Array, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): Buffer {
  if (payload.length > maxFrameBytes) throw tooLarge(payload.length, maxFrameBytes);
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/** Incremental decoder: feed it whatever a read returned; it yields the frames completed so far. */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = -1; // payload length of the frame in progress, -1 while reading a header

  constructor(private readonly maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {}

  push(chunk: Uint8Array): Buffer[] {
    this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.buffered += chunk.byteLength;
    const frames: Buffer[] = [];
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < FRAME_HEADER_BYTES) break;
        const length = this.take(FRAME_HEADER_BYTES).readUInt32BE(0);
        if (length > this.maxFrameBytes) throw tooLarge(length, this.maxFrameBytes);
        this.need = length;
      }
      if (this.buffered < this.need) break;
      frames.push(this.take(this.need));
      this.need = -1;
    }
    return frames;
  }

  /** True when bytes of an unfinished frame (header or payload) are buffered. */
  get midFrame(): boolean {
    return this.need >= 0 || this.buffered > 0;
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered);
    const out = Buffer.from(all.subarray(0, n)); // a copy: the rest of the read buffer is not retained
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Parse a frame's payload as one JSON object (the protocol's only message shape). */
export function decodeJsonFrame(frame: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(frame));
  } catch {
    throw new InferenceError("MESSAGE_INVALID", "frame payload is not UTF-8 JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InferenceError("MESSAGE_INVALID", "frame payload must be a JSON object");
  }
  return value as Record<string, unknown>;
}

export interface FramedOptions {
  maxFrameBytes?: number;
}

/**
 * A duplex byte stream (Unix, TCP or vsock socket) read and written as JSON frames. `next()`
 * resolves with the next message, `null` once the peer closed cleanly between frames, and rejects
 * with FRAME_TOO_LARGE / FRAME_TRUNCATED / MESSAGE_INVALID / CONNECTION_CLOSED otherwise.
 */
export class FramedConnection {
  private readonly decoder: FrameDecoder;
  private readonly maxFrameBytes: number;
  private readonly queue: Buffer[] = [];
  private waiter: { resolve: (f: Buffer | null) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  private ended = false;

  constructor(
    readonly socket: Duplex,
    options: FramedOptions = {},
  ) {
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (
      !Number.isInteger(this.maxFrameBytes) ||
      this.maxFrameBytes < 64 ||
      this.maxFrameBytes > MAX_FRAME_BYTES_CEILING
    ) {
      throw new InferenceError(
        "MESSAGE_INVALID",
        `maxFrameBytes must be an integer in 64..${MAX_FRAME_BYTES_CEILING}`,
      );
    }
    this.decoder = new FrameDecoder(this.maxFrameBytes);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("end", () => this.onEnd());
    socket.on("close", () => this.onEnd());
    socket.on("error", (err: Error & { code?: string }) =>
      this.fail(
        new InferenceError("CONNECTION_CLOSED", `connection failed (${err.code ?? err.name})`, {
          cause: err,
        }),
      ),
    );
  }

  private onData(chunk: Buffer): void {
    if (this.failure) return;
    let frames: Buffer[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    for (const f of frames) this.deliver(f);
  }

  private onEnd(): void {
    if (this.ended || this.failure) return;
    this.ended = true;
    if (this.decoder.midFrame) {
      this.fail(new InferenceError("FRAME_TRUNCATED", "peer closed the connection in the middle of a frame"));
      return;
    }
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve(null);
    }
  }

  private deliver(frame: Buffer): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve(frame);
    } else {
      this.queue.push(frame);
      // The peer sends faster than we read: stop reading until the queue drains.
      if (this.queue.length > 8) this.socket.pause();
    }
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.reject(err);
    }
  }

  /** The next frame's bytes, or null after a clean close. */
  nextFrame(): Promise<Buffer | null> {
    const queued = this.queue.shift();
    if (queued) {
      if (this.queue.length <= 8) this.socket.resume();
      return Promise.resolve(queued);
    }
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) return Promise.resolve(null);
    if (this.waiter)
      return Promise.reject(new InferenceError("INTERNAL", "concurrent reads on one connection"));
    this.socket.resume();
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  /** The next message, or null after a clean close. */
  async next(): Promise<Record<string, unknown> | null> {
    const frame = await this.nextFrame();
    return frame === null ? null : decodeJsonFrame(frame);
  }

  /** Send one message as a frame, waiting for the socket to drain when it is full. */
  async send(message: object): Promise<void> {
    const frame = encodeFrame(Buffer.from(JSON.stringify(message) + "\n", "utf8"), this.maxFrameBytes);
    if (this.socket.destroyed || this.socket.writableEnded) {
      throw new InferenceError("CONNECTION_CLOSED", "connection is closed");
    }
    if (!this.socket.write(frame)) {
      await new Promise<void>((resolve, reject) => {
        const done = (err?: Error) => {
          this.socket.off("drain", onDrain);
          this.socket.off("close", onClose);
          if (err) reject(err);
          else resolve();
        };
        const onDrain = () => done();
        const onClose = () =>
          done(new InferenceError("CONNECTION_CLOSED", "connection closed while sending"));
        this.socket.on("drain", onDrain);
        this.socket.on("close", onClose);
      });
    }
  }

  close(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
