import { mkdtempSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SimulatedProvider } from "../attestation/providers/software.js";
import { parseTrustPolicy } from "../attestation/policy/load.js";
import {
  breastCancerModelFile,
  breastCancerRows,
  drainChat,
  rejection,
} from "../../test/support/inference.js";
import { decodeModelFile } from "../model/model-file.js";
import { ConfidentialClient } from "./client.js";
import { encodeFrame, FramedConnection } from "./framing.js";
import { Predictor } from "./predictor.js";
import { b64encode } from "./protocol.js";
import { HpkeKeyPair, seal } from "./sealing.js";
import { InferenceServer } from "./server.js";
import { netTransport, type Listener } from "./transport.js";
import type { ChatEvent, ChatUpstream, CloudCredentials } from "./upstream.js";

const simulationPolicy = parseTrustPolicy({ allow_simulated: true });

/** A scripted upstream: answers with the given pieces, and records the credentials it was handed. */
class ScriptedUpstream implements ChatUpstream {
  readonly name = "scripted";
  readonly needsCredentials = true;
  seen: (CloudCredentials | null)[] = [];
  constructor(private readonly pieces: string[]) {}
  async *converse(_r: unknown, credentials: CloudCredentials | null): AsyncIterable<ChatEvent> {
    this.seen.push(credentials);
    for (const text of this.pieces) yield { type: "text", text };
    yield { type: "stop", reason: "end_turn" };
    yield { type: "usage", inputTokens: 11, outputTokens: this.pieces.length };
  }
}

let dir: string;
let server: InferenceServer;
let listener: Listener;
let endpoint: string;
let predictor: Predictor;
const upstream = new ScriptedUpstream(["Aspirin ", "is ", "acetylsalicylic acid."]);

/** A raw framed connection for sending what a well-behaved client never would. */
async function raw(): Promise<FramedConnection> {
  return new FramedConnection(await netTransport.dial(listener.endpoint, { timeoutMs: 5000 }));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "enclave-serve-"));
  predictor = new Predictor(decodeModelFile(await breastCancerModelFile()));
  server = await InferenceServer.create({
    provider: new SimulatedProvider({ measurement: new Uint8Array(48) }),
    predictor,
    chat: upstream,
    mode: "simulation",
  });
  listener = await netTransport.listen(
    { kind: "unix", path: join(dir, "enclave.sock") },
    (s) => void server.handle(s),
  );
  endpoint = `unix:${join(dir, "enclave.sock")}`;
});

afterAll(async () => {
  server.closeAll();
  await listener.close();
});

describe("the enclave server and its client over a Unix socket", () => {
  it("predicts sealed rows exactly as the local predictor does, in input order, label column present or not", async () => {
    const client = await ConfidentialClient.connect(endpoint, { policy: simulationPolicy });
    expect(client.enclaveKey).toEqual(server.publicKey);
    expect(client.appraisal.kind).toBe("simulated");
    for (const dropLabel of [false, true]) {
      const rows = breastCancerRows(25, { dropLabel });
      const remote = await client.predict(rows);
      const local = await predictor.predictCsv(Buffer.from(rows));
      expect(remote).toHaveLength(25);
      expect(remote).toEqual(local);
      for (const p of remote) {
        expect(["malignant", "benign"]).toContain(p.label);
        expect(p.probabilities[0] + p.probabilities[1]).toBeCloseTo(1, 12);
      }
    }
    client.close();
  });

  it("refuses simulated evidence under the default policy, saying so, before sealing anything", async () => {
    const err = await rejection(ConfidentialClient.connect(endpoint));
    expect(err.code).toBe("EVIDENCE_UNTRUSTED");
    expect(err.message).toMatch(/before sealing anything/);
    expect(err.message).toMatch(/simulated evidence is not hardware-backed; the policy does not allow it/);
  });

  it("refuses a man in the middle who serves his own key with the enclave's fresh evidence", async () => {
    const mitmKey = await HpkeKeyPair.generate();
    const mitmPath = join(dir, "mitm.sock");
    const relay = await netTransport.listen({ kind: "unix", path: mitmPath }, (victim) => {
      void (async () => {
        const down = new FramedConnection(victim);
        const up = await raw();
        const req = await down.next();
        await up.send(req!);
        const res = (await up.next())!;
        await down.send({ ...res, public_key: b64encode(mitmKey.publicKey) });
        up.close();
      })();
    });
    const err = await rejection(ConfidentialClient.connect(`unix:${mitmPath}`, { policy: simulationPolicy }));
    expect(err.code).toBe("KEY_MISMATCH");
    expect(err.message).toMatch(/man in the middle/);
    await relay.close();
  });

  it("refuses replayed evidence (bound to an earlier nonce)", async () => {
    const first = await raw();
    await first.send({ command: "GET_PUBLIC_KEY", nonce: b64encode(new Uint8Array(32).fill(7)) });
    const recorded = (await first.next())!;
    first.close();
    const replayPath = join(dir, "replay.sock");
    const replayer = await netTransport.listen({ kind: "unix", path: replayPath }, (victim) => {
      void (async () => {
        const down = new FramedConnection(victim);
        await down.next();
        await down.send(recorded);
      })();
    });
    const err = await rejection(
      ConfidentialClient.connect(`unix:${replayPath}`, { policy: simulationPolicy }),
    );
    expect(err.code).toBe("KEY_MISMATCH");
    expect(err.message).toMatch(/replayed evidence/);
    await replayer.close();
  });

  it("answers a tampered sealed payload with a typed decryption error and stays up", async () => {
    const conn = await raw();
    const sealed = await seal(server.publicKey, "request", Buffer.from("{}"), "PREDICT");
    sealed[40] ^= 1;
    await conn.send({ command: "PREDICT", sealed: b64encode(sealed) });
    expect(await conn.next()).toMatchObject({ ok: false, error: { code: "DECRYPTION_FAILED" } });
    // Sealed for PREDICT, sent as CHAT_STREAM: the associated data differs, so it does not open.
    const predictBody = await seal(server.publicKey, "request", Buffer.from("{}"), "PREDICT");
    await conn.send({ command: "CHAT_STREAM", sealed: b64encode(predictBody) });
    expect(await conn.next()).toMatchObject({ event: "error", code: "DECRYPTION_FAILED" });
    await conn.send({ command: "HEALTH" });
    expect(await conn.next()).toMatchObject({ ok: true, status: "ok", mode: "simulation" });
    conn.close();
  });

  it("names an unknown command, and refuses a malformed request by field", async () => {
    const conn = await raw();
    await conn.send({ command: "DROP_TABLES" });
    const res = (await conn.next()) as { error: { code: string; message: string } };
    expect(res.error.code).toBe("UNKNOWN_COMMAND");
    expect(res.error.message).toMatch(
      /unknown command "DROP_TABLES"; known: GET_PUBLIC_KEY, HEALTH, PREDICT/,
    );
    await conn.send({ command: "GET_PUBLIC_KEY", nonce: "short" });
    expect(await conn.next()).toMatchObject({ ok: false, error: { code: "MESSAGE_INVALID" } });
    conn.close();
  });

  it("keeps which row and column failed sealed: the clear error says only that the rows were refused", async () => {
    const client = await ConfidentialClient.connect(endpoint, { policy: simulationPolicy });
    const rows = breastCancerRows(3).replace(/\n17\.99,/, "\nnot-a-number,");
    const err = await rejection(client.predict(rows));
    expect(err.code).toBe("PAYLOAD_INVALID");
    expect(err.message).toMatch(/row 1.*mean_radius/);
    expect(err.message).not.toMatch(/not-a-number/);
    client.close();
  });

  it("drops a connection whose frame is oversized or truncated, and keeps serving others", async () => {
    const big = await netTransport.dial(listener.endpoint, { timeoutMs: 5000 });
    const header = Buffer.alloc(4);
    header.writeUInt32BE(0xffffffff);
    const answer = new Promise<Buffer>((resolve) => {
      const got: Buffer[] = [];
      big.on("data", (b: Buffer) => got.push(b));
      big.on("close", () => resolve(Buffer.concat(got)));
    });
    big.write(header);
    const reply = await answer;
    expect(JSON.parse(reply.subarray(4).toString())).toMatchObject({
      ok: false,
      error: { code: "FRAME_TOO_LARGE" },
    });

    const cut = connect(listener.endpoint.kind === "unix" ? listener.endpoint.path : "");
    await new Promise((r) => cut.once("connect", r));
    cut.end(encodeFrame(Buffer.from('{"command":"HEALTH"}\n')).subarray(0, 10));
    await new Promise((r) => cut.once("close", r));

    const client = await ConfidentialClient.connect(endpoint, { policy: simulationPolicy });
    expect(await client.health()).toMatchObject({ status: "ok" });
    client.close();
  });

  it("streams a sealed chat after credentials arrive; without them it sends the one clear error event", async () => {
    const client = await ConfidentialClient.connect(endpoint, { policy: simulationPolicy });
    const conversation = [{ role: "user" as const, content: "What is aspirin?" }];
    const noCreds = await rejection(client.chat(conversation));
    expect(noCreds.code).toBe("NO_CREDENTIALS");
    expect(await client.health()).toMatchObject({ has_credentials: false });

    const expiration = new Date(Date.now() + 3600_000).toISOString();
    await client.setCredentials({ access_key_id: "AKIA-test", secret_access_key: "s3cret", expiration });
    expect(await client.health()).toMatchObject({ has_credentials: true, credentials_expire_at: expiration });

    const { pieces, summary } = await drainChat(client.chatStream(conversation));
    expect(pieces).toEqual(["Aspirin ", "is ", "acetylsalicylic acid."]);
    expect(summary).toMatchObject({
      chunks: 3,
      stopReason: "end_turn",
      usage: { input_tokens: 11, output_tokens: 3 },
    });
    expect(upstream.seen.at(-1)).toMatchObject({ accessKeyId: "AKIA-test", secretAccessKey: "s3cret" });

    const key = summary.replyKey;
    const user = await key.open("userStorage", summary.storage.user, "CHAT_STREAM");
    expect(JSON.parse(Buffer.from(user).toString())).toEqual(conversation);
    const assistant = await key.open("assistantStorage", summary.storage.assistant, "CHAT_STREAM");
    expect(Buffer.from(assistant).toString()).toBe("Aspirin is acetylsalicylic acid.");
    // The two storage copies cannot stand in for each other.
    expect((await rejection(key.open("userStorage", summary.storage.assistant, "CHAT_STREAM"))).code).toBe(
      "DECRYPTION_FAILED",
    );
    client.close();
  });

  it("refuses expired credentials at SET_CREDENTIALS and a chat once the held ones have expired", async () => {
    let now = Date.now();
    const s = await InferenceServer.create({
      provider: new SimulatedProvider({ measurement: new Uint8Array(48) }),
      chat: new ScriptedUpstream(["x"]),
      mode: "simulation",
      now: () => now,
    });
    const path = join(dir, "expiry.sock");
    const l = await netTransport.listen({ kind: "unix", path }, (sock) => void s.handle(sock));
    const client = await ConfidentialClient.connect(`unix:${path}`, { policy: simulationPolicy });
    const past = new Date(now - 1000).toISOString();
    const setPast = await rejection(
      client.setCredentials({ access_key_id: "a", secret_access_key: "b", expiration: past }),
    );
    expect(setPast.code).toBe("CREDENTIALS_EXPIRED");
    await client.setCredentials({
      access_key_id: "a",
      secret_access_key: "b",
      expiration: new Date(now + 60_000).toISOString(),
    });
    now += 61_000;
    expect((await rejection(client.chat([{ role: "user", content: "hi" }]))).code).toBe(
      "CREDENTIALS_EXPIRED",
    );
    client.close();
    s.closeAll();
    await l.close();
  });

  it("times out instead of hanging on an enclave that never answers, and types a refused connection", async () => {
    const silentPath = join(dir, "silent.sock");
    const silent = await netTransport.listen({ kind: "unix", path: silentPath }, () => undefined);
    const t0 = Date.now();
    const err = await rejection(ConfidentialClient.connect(`unix:${silentPath}`, { timeoutMs: 300 }));
    expect(err.code).toBe("TIMEOUT");
    expect(Date.now() - t0).toBeLessThan(5000);
    await silent.close();
    expect((await rejection(ConfidentialClient.connect(`unix:${join(dir, "nobody.sock")}`))).code).toBe(
      "CONNECTION_REFUSED",
    );
    expect((await rejection(ConfidentialClient.connect("tcp:127.0.0.1:1"))).code).toBe("CONNECTION_REFUSED");
  });
});
