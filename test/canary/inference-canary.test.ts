import { mkdtempSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { parseTrustPolicy } from "../../src/attestation/policy/load.js";
import { SimulatedProvider } from "../../src/attestation/providers/software.js";
import { ConfidentialClient } from "../../src/inference/client.js";
import { FramedConnection } from "../../src/inference/framing.js";
import { Predictor } from "../../src/inference/predictor.js";
import { b64encode } from "../../src/inference/protocol.js";
import { seal } from "../../src/inference/sealing.js";
import { InferenceServer } from "../../src/inference/server.js";
import { netTransport } from "../../src/inference/transport.js";
import type { ChatEvent, ChatUpstream } from "../../src/inference/upstream.js";
import { LocalModelUpstream } from "../../src/inference/upstreams/local-model.js";
import { createLogger } from "../../src/logging/logger.js";
import { decodeModelFile } from "../../src/model/model-file.js";
import { breastCancerModelFile } from "../support/inference.js";
import { bundledRows, findIn, needles, plantNumbers, stringCanary } from "./canary.js";

/**
 * Confidential inference's share of the non-negotiable, at trace level: what a client sealed
 * (rows, a conversation, credentials) appears in no log line of the enclave, no error either side
 * raises, no health answer, and nowhere in the bytes the host relays: every frame in both
 * directions is tapped. The positive control shows the tap and the log capture would see a leak.
 */
describe("confidential inference canaries", () => {
  it("nothing sealed reaches the enclave's trace log, the wire, errors or the health probe", async () => {
    const chatCanary = stringCanary("CHAT");
    const secretCanary = stringCanary("SECRET");
    const cellCanary = stringCanary("CELL");
    const answerCanary = stringCanary("ANSWER");
    let log = "";
    const logger = createLogger({
      level: "trace",
      destination: new Writable({ write: (c, _e, cb) => ((log += String(c)), cb()) }),
    });
    const predictor = new Predictor(decodeModelFile(await breastCancerModelFile()));
    const echo: ChatUpstream = {
      name: "echo",
      needsCredentials: true,
      async *converse(r, c): AsyncIterable<ChatEvent> {
        // The upstream sees the opened conversation and credentials (it runs inside the enclave).
        expect(r.messages[0].content).toContain(chatCanary);
        expect(c?.secretAccessKey).toBe(secretCanary);
        yield { type: "text", text: `${answerCanary} ` };
        yield { type: "text", text: r.messages[0].content };
        yield { type: "usage", inputTokens: 3, outputTokens: 2 };
      },
    };
    const server = await InferenceServer.create({
      provider: new SimulatedProvider({ measurement: new Uint8Array(48) }),
      predictor,
      chat: echo,
      mode: "simulation",
      logger,
    });
    const dir = mkdtempSync(join(tmpdir(), "inference-canary-"));
    const inner = await netTransport.listen(
      { kind: "unix", path: join(dir, "enclave.sock") },
      (s) => void server.handle(s),
    );
    // The host's view: a relay that records every byte in both directions.
    let wire = Buffer.alloc(0);
    const tap = (b: Buffer) => (wire = Buffer.concat([wire, b]));
    const relay = await netTransport.listen({ kind: "unix", path: join(dir, "relay.sock") }, (down) => {
      const up = connect(join(dir, "enclave.sock"));
      down.on("data", (b: Buffer) => (tap(b), up.write(b)));
      up.on("data", (b: Buffer) => (tap(b), down.write(b)));
      down.on("close", () => up.destroy());
      up.on("close", () => down.destroy());
    });
    const errors: string[] = [];
    const client = await ConfidentialClient.connect(relay.endpoint, {
      policy: parseTrustPolicy({ allow_simulated: true }),
    });
    try {
      const rows = bundledRows();
      plantNumbers(rows, (name) => rows[0].indexOf(name));
      const csv = rows.map((r) => r.join(",")).join("\n") + "\n";
      expect(await client.predict(csv)).toHaveLength(rows.length - 1);
      const bad = rows.slice(0, 3).map((r) => r.slice());
      bad[2][4] = cellCanary;
      await client
        .predict(bad.map((r) => r.join(",")).join("\n"))
        .catch((e: Error) => errors.push(e.message));
      await client.chat([{ role: "user", content: chatCanary }]).catch((e: Error) => errors.push(e.message));
      await client.setCredentials({
        access_key_id: "AKIAFAKE",
        secret_access_key: secretCanary,
        expiration: new Date(Date.now() + 60_000).toISOString(),
      });
      const summary = await client.chat([{ role: "user", content: `tell me about ${chatCanary}` }]);
      expect(summary.text).toContain(answerCanary);
      const health = JSON.stringify(await client.health());
      // A tampered sealed request carrying a canary, and a sealed payload for the wrong command.
      const raw = await netTransport.dial(relay.endpoint, { timeoutMs: 5000 });
      const sealed = await seal(
        server.publicKey,
        "request",
        Buffer.from(JSON.stringify({ rows_csv: cellCanary })),
        "PREDICT",
      );
      sealed[33] ^= 1;
      const conn = new FramedConnection(raw);
      await conn.send({ command: "PREDICT", sealed: b64encode(sealed) });
      errors.push(JSON.stringify(await conn.next()));
      conn.close();
      // The local-model upstream refusing a canary-bearing message says so without the message.
      const refused = new LocalModelUpstream(predictor).converse({
        messages: [{ role: "user", content: chatCanary }],
      });
      await refused[Symbol.asyncIterator]()
        .next()
        .catch((e: Error) => errors.push(e.message));

      expect(errors.length).toBeGreaterThanOrEqual(4);
      expect(log.length).toBeGreaterThan(1000); // trace really was on
      const list = needles([chatCanary, secretCanary, cellCanary, answerCanary]);
      expect(findIn(log, list), "enclave log").toEqual([]);
      expect(findIn(wire, list), "bytes the host relayed").toEqual([]);
      expect(findIn(errors.join("\n"), list), "errors").toEqual([]);
      expect(findIn(health, list), "health").toEqual([]);

      // Positive controls: the tap saw the clear parts of the traffic, and the scan finds planted values.
      expect(wire.includes(Buffer.from('"command":"PREDICT"'))).toBe(true);
      expect(wire.includes(Buffer.from('"event":"chunk"'))).toBe(true);
      // Positive control: the same scan over a plaintext the host never saw does find them.
      expect(findIn(csv + chatCanary + secretCanary, list).length).toBeGreaterThanOrEqual(6);
    } finally {
      client.close();
      server.closeAll();
      await relay.close();
      await inner.close();
    }
  });
});
