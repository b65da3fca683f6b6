import { afterEach, describe, expect, it } from "vitest";
import {
  answerFrames,
  eventFrame,
  exceptionFrame,
  startFakeBedrock,
} from "../../../test/support/bedrock-fake.js";
import { rejection } from "../../../test/support/inference.js";
import type { ChatEvent, CloudCredentials } from "../upstream.js";
import { BedrockUpstream } from "./bedrock.js";

const creds: CloudCredentials = {
  accessKeyId: "AKIAFAKEPUSHED000001",
  secretAccessKey: "fake-secret",
  sessionToken: "fake-session",
  expiration: new Date(Date.now() + 3600_000),
  region: "us-east-1",
};
const request = { messages: [{ role: "user" as const, content: "What is aspirin?" }], maxTokens: 64 };
let fake: Awaited<ReturnType<typeof startFakeBedrock>> | undefined;
afterEach(async () => fake?.close());

async function collect(up: BedrockUpstream, c: CloudCredentials | null = creds): Promise<ChatEvent[]> {
  const out: ChatEvent[] = [];
  for await (const ev of up.converse(request, c, new AbortController().signal)) out.push(ev);
  return out;
}

describe("Bedrock ConverseStream upstream against a loopback event-stream server", () => {
  it("yields text deltas, the stop reason and usage, from frames split into 5-byte reads", async () => {
    fake = await startFakeBedrock(() => ({
      frames: answerFrames(["Aspirin ", "is ", "ASA."]),
      chunkBytes: 5,
    }));
    const up = new BedrockUpstream({ modelId: "anthropic.claude-test-v1:0", endpoint: fake.url });
    expect(await collect(up)).toEqual([
      { type: "text", text: "Aspirin " },
      { type: "text", text: "is " },
      { type: "text", text: "ASA." },
      { type: "stop", reason: "end_turn" },
      { type: "usage", inputTokens: 9, outputTokens: 3 },
    ]);
    const seen = fake.seen[0];
    expect(seen.path).toBe(`/model/${encodeURIComponent("anthropic.claude-test-v1:0")}/converse-stream`);
    // SigV4 with the pushed key, nothing else: the SDK's default chain is never asked.
    expect(seen.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIAFAKEPUSHED000001\/\d{8}\/us-east-1\/bedrock\/aws4_request/,
    );
    expect(JSON.parse(seen.body)).toMatchObject({
      messages: [{ role: "user", content: [{ text: "What is aspirin?" }] }],
      inferenceConfig: { maxTokens: 64 },
    });
  });

  it("ends with UPSTREAM_FAILED on a frame whose CRC does not match", async () => {
    const frames = answerFrames(["fine ", "then corrupt"]);
    const bad = Uint8Array.from(frames[2]);
    bad[bad.length - 6] ^= 0xff; // a payload byte: the message CRC no longer matches
    fake = await startFakeBedrock(() => ({ frames: [frames[0], frames[1], bad, ...frames.slice(3)] }));
    const up = new BedrockUpstream({ modelId: "m", endpoint: fake.url });
    const seen: ChatEvent[] = [];
    const err = await rejection(
      (async () => {
        for await (const ev of up.converse(request, creds, new AbortController().signal)) seen.push(ev);
      })(),
    );
    expect(err.code).toBe("UPSTREAM_FAILED");
    expect(seen).toEqual([{ type: "text", text: "fine " }]);
  });

  it("turns an exception event into UPSTREAM_FAILED naming the exception, not its text", async () => {
    fake = await startFakeBedrock(() => ({
      frames: [
        eventFrame("contentBlockDelta", { delta: { text: "a" } }),
        exceptionFrame("modelStreamErrorException", "leaked prompt text"),
      ],
    }));
    const err = await rejection(collect(new BedrockUpstream({ modelId: "m", endpoint: fake.url })));
    expect(err.code).toBe("UPSTREAM_FAILED");
    expect(err.message).toMatch(/ModelStreamErrorException|modelStreamErrorException/);
    expect(err.message).not.toMatch(/leaked prompt text/);
  });

  it("reports an HTTP refusal by status, and refuses to run without pushed credentials", async () => {
    fake = await startFakeBedrock(() => ({ status: 403 }));
    const err = await rejection(collect(new BedrockUpstream({ modelId: "m", endpoint: fake.url })));
    expect(err.code).toBe("UPSTREAM_FAILED");
    expect(err.message).toMatch(/HTTP 403/);
    expect(
      (await rejection(collect(new BedrockUpstream({ modelId: "m", endpoint: fake.url }), null))).code,
    ).toBe("NO_CREDENTIALS");
  });
});
