import { describe, expect, it } from "vitest";
import { encodeFrame, FrameDecoder } from "./frames.js";

const frame = (body: Buffer) => {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
};

describe("channel frames", () => {
  it("reassembles messages split at every byte and joined in one chunk", () => {
    const a = { type: "ready", interfaces: ["lo"] };
    const b = { type: "reply", id: 1, ok: true, value: "ü€" };
    const bytes = Buffer.concat([encodeFrame(a), encodeFrame(b)]);
    const split = new FrameDecoder();
    const got = [...bytes].flatMap((byte) => split.push(Buffer.from([byte])));
    expect(got).toEqual([a, b]);
    expect(new FrameDecoder().push(bytes)).toEqual([a, b]);
  });

  it("refuses a frame over the limit as soon as its length arrives, and then refuses everything", () => {
    const d = new FrameDecoder(1024);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(1025);
    expect(() => d.push(head)).toThrow(
      expect.objectContaining({
        code: "RUNTIME_CHANNEL_PROTOCOL",
        message: "frame of 1025 bytes exceeds 1024",
      }),
    );
    expect(() => d.push(encodeFrame({ type: "ready" }))).toThrow(/channel already failed/);
  });

  it("refuses bytes that are not UTF-8 JSON objects", () => {
    expect(() => new FrameDecoder().push(frame(Buffer.from("{not json")))).toThrow(/not UTF-8 JSON/);
    expect(() => new FrameDecoder().push(frame(Buffer.from([0x7b, 0xff, 0x7d])))).toThrow(/not UTF-8 JSON/);
    for (const text of ["[1]", "null", "3", '"s"']) {
      expect(() => new FrameDecoder().push(frame(Buffer.from(text)))).toThrow(/not a JSON object/);
    }
  });
});
