import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTrustPolicy } from "../../attestation/policy/load.js";
import { SimulatedProvider } from "../../attestation/providers/software.js";
import { decodeModelFile } from "../../model/model-file.js";
import { answerFrames, startFakeBedrock } from "../../../test/support/bedrock-fake.js";
import { breastCancerModelFile, breastCancerRows, drainChat } from "../../../test/support/inference.js";
import { ConfidentialClient } from "../client.js";
import { Predictor } from "../predictor.js";
import { InferenceServer } from "../server.js";
import { netTransport, type Listener } from "../transport.js";
import type { ChatUpstream } from "../upstream.js";
import { BedrockUpstream } from "./bedrock.js";
import { LocalModelUpstream } from "./local-model.js";

const policy = parseTrustPolicy({ allow_simulated: true });
const dir = mkdtempSync(join(tmpdir(), "enclave-chat-"));
let fake: Awaited<ReturnType<typeof startFakeBedrock>>;
const open: { server: InferenceServer; listener: Listener }[] = [];

async function enclave(chat: ChatUpstream, name: string): Promise<ConfidentialClient> {
  const server = await InferenceServer.create({
    provider: new SimulatedProvider({ measurement: new Uint8Array(48) }),
    chat,
    mode: "simulation",
  });
  const listener = await netTransport.listen(
    { kind: "unix", path: join(dir, `${name}.sock`) },
    (s) => void server.handle(s),
  );
  open.push({ server, listener });
  return ConfidentialClient.connect(listener.endpoint, { policy });
}

beforeAll(async () => {
  fake = await startFakeBedrock(() => ({
    frames: answerFrames(["Acetyl", "salicylic ", "acid."]),
    chunkBytes: 7,
  }));
});
afterAll(async () => {
  for (const o of open) {
    o.server.closeAll();
    await o.listener.close();
  }
  await fake.close();
});

describe("CHAT_STREAM through the enclave", () => {
  it("relays Bedrock's deltas as sealed chunks, signing with the credentials pushed by SET_CREDENTIALS only", async () => {
    const client = await enclave(
      new BedrockUpstream({ modelId: "anthropic.test", endpoint: fake.url }),
      "bedrock",
    );
    const conversation = [{ role: "user" as const, content: "Name aspirin's compound." }];
    await expect(client.chat(conversation)).rejects.toMatchObject({ code: "NO_CREDENTIALS" });
    expect(fake.seen).toHaveLength(0);
    await client.setCredentials({
      access_key_id: "AKIAPUSHEDVIASEALED1",
      secret_access_key: "pushed-secret",
      session_token: "pushed-token",
      expiration: new Date(Date.now() + 900_000).toISOString(),
      region: "eu-west-1",
    });
    const { pieces, summary } = await drainChat(client.chatStream(conversation));
    expect(pieces).toEqual(["Acetyl", "salicylic ", "acid."]);
    expect(summary).toMatchObject({
      chunks: 3,
      stopReason: "end_turn",
      usage: { input_tokens: 9, output_tokens: 3 },
    });
    expect(fake.seen.at(-1)!.authorization).toMatch(
      /Credential=AKIAPUSHEDVIASEALED1\/\d{8}\/eu-west-1\/bedrock\//,
    );
    client.close();
  });

  it("answers offline from our own model: one line per row, the same labels PREDICT gives", async () => {
    const predictor = new Predictor(decodeModelFile(await breastCancerModelFile()));
    const client = await enclave(new LocalModelUpstream(predictor), "local");
    const rows = breastCancerRows(4);
    const summary = await client.chat([{ role: "user", content: rows }]);
    const labels = (await predictor.predictCsv(Buffer.from(rows))).map((p) => p.label);
    expect(
      summary.text
        .trim()
        .split("\n")
        .map((l) => l.split(" ")[2]),
    ).toEqual(labels);
    expect(summary.chunks).toBe(4);
    await expect(client.chat([{ role: "user", content: "not rows at all" }])).rejects.toMatchObject({
      code: "UPSTREAM_FAILED",
      message: expect.not.stringMatching(/not rows at all/),
    });
    client.close();
  });
});
