import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { encodeFrame, FrameDecoder, FramedConnection } from "./framing.js";
import type { InferenceError } from "./errors.js";

const frame = (obj: object) => encodeFrame(Buffer.from(JSON.stringify(obj) + "\n"));

describe("length-prefixed framing", () => {
  it("reassembles frames from reads of any size, one byte at a time included", () => {
    const bytes = Buffer.concat([frame({ a: 1 }), frame({ b: "x".repeat(1000) }), frame({ c: [] })]);
    for (const step of [1, 3, 4, 5, 7, 1000, bytes.length]) {
      const d = new FrameDecoder();
      const got: Buffer[] = [];
      for (let i = 0; i < bytes.length; i += step) got.push(...d.push(bytes.subarray(i, i + step)));
      expect(got.map((f) => JSON.parse(f.toString()))).toEqual([
        { a: 1 },
        { b: "x".repeat(1000) },
        { c: [] },
      ]);
      expect(d.midFrame).toBe(false);
    }
  });

  it("refuses an oversized frame from its header, before any of its payload arrives", () => {
    const d = new FrameDecoder(1024);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1025);
    expect(() => d.push(header)).toThrow(expect.objectContaining({ code: "FRAME_TOO_LARGE" }));
    expect(() => encodeFrame(Buffer.alloc(2000), 1024)).toThrow(
      expect.objectContaining({ code: "FRAME_TOO_LARGE" }),
    );
  });

  it("reports a peer that closes mid-frame as truncated, and a clean close as the end", async () => {
    for (const cut of [2, 4, 9]) {
      const s = new PassThrough();
      const conn = new FramedConnection(s);
      const bytes = frame({ hello: "world" });
      s.end(bytes.subarray(0, cut));
      await expect(conn.next()).rejects.toMatchObject({ code: "FRAME_TRUNCATED" });
    }
    const s = new PassThrough();
    const conn = new FramedConnection(s);
    s.end(frame({ n: 1 }));
    expect(await conn.next()).toEqual({ n: 1 });
    expect(await conn.next()).toBeNull();
  });

  it("refuses a payload that is not a JSON object", async () => {
    for (const payload of ["not json", "[1,2]", "\xff"]) {
      const s = new PassThrough();
      const conn = new FramedConnection(s);
      s.write(encodeFrame(Buffer.from(payload, "latin1")));
      const err = (await conn.next().catch((e) => e)) as InferenceError;
      expect(err.code).toBe("MESSAGE_INVALID");
    }
  });
});
