import {
  createServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type ServerHttp2Session,
} from "node:http2";
import type { AddressInfo } from "node:net";
import { EventStreamCodec } from "@smithy/eventstream-codec";

/**
 * A loopback stand-in for the Bedrock Runtime endpoint that speaks the real wire: AWS event-stream
 * frames (prelude, headers, payload, both CRC32s) encoded by @smithy/eventstream-codec, sent in
 * chunks of any size so the client must reassemble frames split across reads.
 */
const codec = new EventStreamCodec(
  (b) => new TextDecoder().decode(b),
  (s) => new TextEncoder().encode(s),
);

const str = (value: string) => ({ type: "string" as const, value });

export function eventFrame(eventType: string, body: unknown): Uint8Array {
  return codec.encode({
    headers: {
      ":event-type": str(eventType),
      ":message-type": str("event"),
      ":content-type": str("application/json"),
    },
    body: new TextEncoder().encode(JSON.stringify(body)),
  });
}

export function exceptionFrame(exceptionType: string, message: string): Uint8Array {
  return codec.encode({
    headers: {
      ":exception-type": str(exceptionType),
      ":message-type": str("exception"),
      ":content-type": str("application/json"),
    },
    body: new TextEncoder().encode(JSON.stringify({ message })),
  });
}

/** The frames of a normal answer: messageStart, one delta per piece, stop, usage metadata. */
export function answerFrames(
  pieces: string[],
  usage = { inputTokens: 9, outputTokens: pieces.length },
): Uint8Array[] {
  return [
    eventFrame("messageStart", { role: "assistant" }),
    ...pieces.map((text) => eventFrame("contentBlockDelta", { contentBlockIndex: 0, delta: { text } })),
    eventFrame("contentBlockStop", { contentBlockIndex: 0 }),
    eventFrame("messageStop", { stopReason: "end_turn" }),
    eventFrame("metadata", {
      usage: { ...usage, totalTokens: usage.inputTokens + usage.outputTokens },
      metrics: { latencyMs: 1 },
    }),
  ];
}

export interface FakeAnswer {
  frames?: Uint8Array[];
  status?: number;
  /** Write the body in pieces of this many bytes (default: one write per frame). */
  chunkBytes?: number;
  /** Pause between pieces. */
  delayMs?: number;
}

export interface SeenRequest {
  path: string;
  authorization: string;
  body: string;
}

export async function startFakeBedrock(answer: (req: SeenRequest) => FakeAnswer) {
  const seen: SeenRequest[] = [];
  // HTTP/2 (cleartext, prior knowledge), as the SDK's Bedrock Runtime client speaks it.
  const server = createServer(async (req: Http2ServerRequest, res: Http2ServerResponse) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    const request = { path: req.url ?? "", authorization: String(req.headers.authorization ?? ""), body };
    seen.push(request);
    const a = answer(request);
    if (a.status && a.status !== 200) {
      res.writeHead(a.status, {
        "content-type": "application/json",
        "x-amzn-errortype": "AccessDeniedException",
      });
      res.end(JSON.stringify({ message: "denied" }));
      return;
    }
    res.writeHead(200, {
      "content-type": "application/vnd.amazon.eventstream",
      "x-amzn-requestid": "fake-1",
    });
    const bytes = Buffer.concat((a.frames ?? []).map((f) => Buffer.from(f)));
    const step = a.chunkBytes ?? 0;
    const pieces =
      step > 0
        ? Array.from({ length: Math.ceil(bytes.length / step) }, (_, i) =>
            bytes.subarray(i * step, (i + 1) * step),
          )
        : (a.frames ?? []).map((f) => Buffer.from(f));
    for (const p of pieces) {
      res.write(p);
      if (a.delayMs) await new Promise((r) => setTimeout(r, a.delayMs));
    }
    res.end();
  });
  const sessions = new Set<ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
}
