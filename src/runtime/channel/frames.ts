import { RuntimeError, RuntimeErrorCode } from "../errors.js";

/**
 * The channel's framing, the same over vsock and virtio-serial: a 4-byte big-endian length, then
 * that many bytes of UTF-8 JSON holding one object. The guest is untrusted, so the decoder is
 * fail-closed: a frame over the limit, bytes that are not JSON, or JSON that is not an object end the
 * channel with a typed error (it never buffers without bound, never skips ahead to resynchronise).
 */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

export function encodeFrame(message: object): Buffer {
  const body = Buffer.from(JSON.stringify(message), "utf8");
  if (body.length > MAX_FRAME_BYTES) {
    throw new RuntimeError(
      RuntimeErrorCode.CHANNEL_PROTOCOL,
      `frame of ${body.length} bytes exceeds ${MAX_FRAME_BYTES}`,
    );
  }
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failed = false;

  constructor(private readonly maxBytes = MAX_FRAME_BYTES) {}

  /** Feed bytes; returns the whole messages they complete. Throws once, then refuses further input. */
  push(chunk: Buffer): Record<string, unknown>[] {
    if (this.failed) throw new RuntimeError(RuntimeErrorCode.CHANNEL_PROTOCOL, "channel already failed");
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Record<string, unknown>[] = [];
    while (this.buffered >= 4) {
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      this.chunks = [all];
      const size = all.readUInt32BE(0);
      if (size > this.maxBytes) this.fail(`frame of ${size} bytes exceeds ${this.maxBytes}`);
      if (all.length < 4 + size) break;
      out.push(this.parse(all.subarray(4, 4 + size)));
      const rest = all.subarray(4 + size);
      this.chunks = rest.length ? [rest] : [];
      this.buffered = rest.length;
    }
    return out;
  }

  private parse(body: Buffer): Record<string, unknown> {
    let value: unknown;
    try {
      value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
    } catch {
      this.fail("frame is not UTF-8 JSON");
    }
    if (value === null || typeof value !== "object" || Array.isArray(value))
      this.fail("frame is not a JSON object");
    return value as Record<string, unknown>;
  }

  private fail(message: string): never {
    this.failed = true;
    this.chunks = [];
    this.buffered = 0;
    throw new RuntimeError(RuntimeErrorCode.CHANNEL_PROTOCOL, message);
  }
}
