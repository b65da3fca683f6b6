// Confidential inference, each figure next to a baseline measured in the same run:
// - seal/open MB/s of HPKE (X25519, HKDF-SHA256, AES-256-GCM) against raw AES-256-GCM (node:crypto);
// - PREDICT latency p50/p99 with 1, 10 and 100 concurrent clients over a Unix socket, against the
//   local Predictor on the same rows;
// - CHAT_STREAM time to first chunk through the enclave against Bedrock ConverseStream's own, both
//   against a loopback HTTP/2 server sending real event-stream frames.
//   --filter inference-seal | inference-predict | inference-chat  runs one part.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { TextDecoder, TextEncoder } from "node:util";
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { parseTrustPolicy } from "../dist/attestation/policy/load.js";
import { SimulatedProvider } from "../dist/attestation/providers/software.js";
import { loadDataset } from "../dist/data/load.js";
import { prepareDataset } from "../dist/data/split.js";
import { ConfidentialClient } from "../dist/inference/client.js";
import { Predictor } from "../dist/inference/predictor.js";
import { HpkeKeyPair, seal, StreamSealer } from "../dist/inference/sealing.js";
import { InferenceServer } from "../dist/inference/server.js";
import { netTransport } from "../dist/inference/transport.js";
import { BedrockUpstream } from "../dist/inference/upstreams/bedrock.js";
import { encodeModelFile, decodeModelFile } from "../dist/model/model-file.js";
import { Network } from "../dist/model/network.js";
import { buildModelSpec } from "../dist/model/registry.js";
import { SeededRandom } from "../dist/random.js";
import { kernels } from "../dist/tensor/backend.js";

const DATA = new URL("../data/", import.meta.url).pathname;
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const quantile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
const policy = parseTrustPolicy({ allow_simulated: true });

async function mbPerSecond(bytes, fn, ms = 600) {
  for (let i = 0; i < 3; i++) await fn();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    await fn();
    n++;
  }
  return (n * bytes) / ((performance.now() - t0) / 1000) / 1e6;
}

/** One raw AES-256-GCM encryption of `msg` (the baseline both seal benches measure against). */
function aesGcmEncrypt(key, iv, msg) {
  const x = createCipheriv("aes-256-gcm", key, iv);
  x.update(msg);
  x.final();
  x.getAuthTag();
}

async function sealBench(say, records) {
  const key = await HpkeKeyPair.generate();
  const aesKey = randomBytes(32);
  say("seal/open (HPKE single-shot) vs raw AES-256-GCM, same run:");
  say("size       hpke seal MB/s  hpke open MB/s  aes-gcm enc MB/s  aes-gcm dec MB/s  seal/aes");
  for (const size of [1024, 64 * 1024, 1024 * 1024]) {
    const msg = randomBytes(size);
    const sealed = await seal(key.publicKey, "request", msg);
    const iv = randomBytes(12);
    const c = createCipheriv("aes-256-gcm", aesKey, iv);
    const ct = Buffer.concat([c.update(msg), c.final()]);
    const tag = c.getAuthTag();
    const s = await mbPerSecond(size, () => seal(key.publicKey, "request", msg));
    const o = await mbPerSecond(size, () => key.open("request", sealed));
    const e = await mbPerSecond(size, () => aesGcmEncrypt(aesKey, iv, msg));
    const d = await mbPerSecond(size, () => {
      const x = createDecipheriv("aes-256-gcm", aesKey, iv);
      x.setAuthTag(tag);
      x.update(ct);
      x.final();
    });
    records.push({
      group: "seal",
      bytes: size,
      hpke_seal_mb_s: round(s),
      hpke_open_mb_s: round(o),
      aes_gcm_enc_mb_s: round(e),
      aes_gcm_dec_mb_s: round(d),
      seal_over_aes: round(s / e, 3),
    });
    say(
      `${String(size).padEnd(9)} ${round(s).toString().padStart(15)} ${round(o).toString().padStart(15)} ${round(e).toString().padStart(17)} ${round(d).toString().padStart(17)} ${round(
        s / e,
        3,
      )
        .toString()
        .padStart(9)}`,
    );
  }
}

/**
 * The same sizes sealed as the chunks of one response stream (what CHAT_STREAM sends): one HPKE
 * context per stream, so X25519 and the HKDF key schedule run once and each chunk costs one AES-GCM
 * seal under the context's sequence-numbered nonce. Single-shot HPKE pays that setup per message;
 * at 1 KiB the setup is nearly all of its time.
 */
async function streamSealBench(say, records) {
  const key = await HpkeKeyPair.generate();
  const aesKey = randomBytes(32);
  say("seal/open per chunk of one HPKE stream (sequence-numbered context) vs raw AES-256-GCM, same run:");
  say("size       stream seal MB/s  stream open MB/s  aes-gcm enc MB/s  single-shot/aes  stream/aes");
  for (const size of [1024, 64 * 1024, 1024 * 1024]) {
    const msg = randomBytes(size);
    const iv = randomBytes(12);
    const sealer = await StreamSealer.to(key.publicKey, "response");
    const opener = await key.openStream("response", sealer.enc);
    // Each chunk opened in order, as the client does; sealing is measured on its own stream.
    const chunks = [];
    const keep = Math.max(8, Math.floor((64 * 1024 * 1024) / size));
    const s = await mbPerSecond(size, async () => {
      const c = await sealer.seal(msg);
      if (chunks.length < keep) chunks.push(c);
    });
    const t0 = performance.now();
    for (const c of chunks) await opener.open(c);
    const o = (chunks.length * size) / ((performance.now() - t0) / 1000) / 1e6;
    const single = await mbPerSecond(size, () => seal(key.publicKey, "response", msg));
    const e = await mbPerSecond(size, () => aesGcmEncrypt(aesKey, iv, msg));
    records.push({
      group: "seal-stream",
      bytes: size,
      stream_seal_mb_s: round(s),
      stream_open_mb_s: round(o),
      aes_gcm_enc_mb_s: round(e),
      single_shot_over_aes: round(single / e, 3),
      stream_over_aes: round(s / e, 3),
    });
    say(
      `${String(size).padEnd(9)} ${round(s).toString().padStart(17)} ${round(o).toString().padStart(17)} ${round(e).toString().padStart(17)} ${round(
        single / e,
        3,
      )
        .toString()
        .padStart(16)} ${round(s / e, 3)
        .toString()
        .padStart(11)}`,
    );
  }
}

async function modelBytes() {
  const { dataset, schema } = await loadDataset(DATA, "breast-cancer-wisconsin.csv");
  const { standardizer } = prepareDataset(dataset, { testFraction: 0.2, seed: 1 });
  const spec = buildModelSpec("SimpleMLP", { input_dim: dataset.numFeatures, num_classes: 2, hidden: [32] });
  const net = new Network(spec, kernels(), new SeededRandom(1));
  return encodeModelFile({ weights: net.weights(), spec, schema, standardizer });
}

async function startEnclave(options) {
  const server = await InferenceServer.create({
    provider: new SimulatedProvider({ measurement: new Uint8Array(48) }),
    mode: "simulation",
    ...options,
  });
  const dir = mkdtempSync(join(tmpdir(), "bench-enclave-"));
  const listener = await netTransport.listen(
    { kind: "unix", path: join(dir, "e.sock") },
    (s) => void server.handle(s),
  );
  return { server, listener, close: async () => (server.closeAll(), await listener.close()) };
}

async function predictBench(say, records) {
  const predictor = new Predictor(decodeModelFile(await modelBytes()));
  const { readFileSync } = await import("node:fs");
  const lines = readFileSync(join(DATA, "breast-cancer-wisconsin.csv"), "utf8").trim().split(/\r?\n/);
  const rows = lines.slice(0, 11).join("\n") + "\n"; // header + 10 rows per request
  const local = [];
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now();
    await predictor.predictCsv(Buffer.from(rows));
    local.push(performance.now() - t0);
  }
  local.sort((a, b) => a - b);
  const base = quantile(local, 0.5);
  records.push({
    group: "predict",
    clients: 0,
    what: "local Predictor (baseline)",
    p50_ms: round(base, 3),
    p99_ms: round(quantile(local, 0.99), 3),
  });
  say(
    `\nPREDICT of 10 rows over a Unix socket (baseline: local Predictor p50 ${round(base, 3)} ms, p99 ${round(quantile(local, 0.99), 3)} ms):`,
  );
  say("clients   requests   p50 ms   p99 ms   p50 / local   req/s");
  const enclave = await startEnclave({ predictor });
  try {
    for (const clients of [1, 10, 100]) {
      const conns = await Promise.all(
        Array.from({ length: clients }, () =>
          ConfidentialClient.connect(enclave.listener.endpoint, { policy }),
        ),
      );
      const perClient = Math.max(3, Math.round(300 / clients));
      const lat = [];
      const t0 = performance.now();
      await Promise.all(
        conns.map(async (c) => {
          for (let i = 0; i < perClient; i++) {
            const s = performance.now();
            await c.predict(rows);
            lat.push(performance.now() - s);
          }
        }),
      );
      const wall = (performance.now() - t0) / 1000;
      for (const c of conns) c.close();
      lat.sort((a, b) => a - b);
      const p50 = quantile(lat, 0.5);
      const p99 = quantile(lat, 0.99);
      records.push({
        group: "predict",
        clients,
        requests: lat.length,
        p50_ms: round(p50),
        p99_ms: round(p99),
        p50_over_local: round(p50 / base, 1),
        req_per_s: Math.round(lat.length / wall),
      });
      say(
        `${String(clients).padStart(7)} ${String(lat.length).padStart(10)} ${round(p50).toString().padStart(8)} ${round(p99).toString().padStart(8)} ${round(
          p50 / base,
          1,
        )
          .toString()
          .padStart(13)} ${String(Math.round(lat.length / wall)).padStart(7)}`,
      );
    }
  } finally {
    await enclave.close();
  }
}

const codec = new EventStreamCodec(
  (b) => new TextDecoder().decode(b),
  (s) => new TextEncoder().encode(s),
);
const frame = (type, body) =>
  codec.encode({
    headers: {
      ":event-type": { type: "string", value: type },
      ":message-type": { type: "string", value: "event" },
      ":content-type": { type: "string", value: "application/json" },
    },
    body: new TextEncoder().encode(JSON.stringify(body)),
  });

async function fakeBedrock() {
  const frames = [
    frame("messageStart", { role: "assistant" }),
    ...Array.from({ length: 20 }, (_, i) =>
      frame("contentBlockDelta", { contentBlockIndex: 0, delta: { text: `token${i} ` } }),
    ),
    frame("messageStop", { stopReason: "end_turn" }),
    frame("metadata", {
      usage: { inputTokens: 5, outputTokens: 20, totalTokens: 25 },
      metrics: { latencyMs: 1 },
    }),
  ];
  const server = createServer(async (req, res) => {
    for await (const _ of req);
    res.writeHead(200, { "content-type": "application/vnd.amazon.eventstream" });
    for (const f of frames) res.write(f);
    res.end();
  });
  const sessions = new Set();
  server.on("session", (s) => (sessions.add(s), s.on("close", () => sessions.delete(s))));
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((r) => (sessions.forEach((s) => s.destroy()), server.close(() => r()))),
  };
}

async function chatBench(say, records) {
  const fake = await fakeBedrock();
  const upstream = new BedrockUpstream({ modelId: "bench", endpoint: fake.url });
  const creds = {
    accessKeyId: "AKIABENCH",
    secretAccessKey: "s",
    expiration: new Date(Date.now() + 3600_000),
    region: "us-east-1",
  };
  const messages = [{ role: "user", content: "hello" }];
  const direct = [];
  for (let i = 0; i < 40; i++) {
    const t0 = performance.now();
    for await (const ev of upstream.converse({ messages }, creds, globalThis.AbortSignal.timeout(60_000))) {
      if (ev.type === "text") {
        direct.push(performance.now() - t0);
        break;
      }
    }
  }
  const enclave = await startEnclave({ chat: upstream });
  const through = [];
  try {
    const client = await ConfidentialClient.connect(enclave.listener.endpoint, { policy });
    await client.setCredentials({
      access_key_id: "AKIABENCH",
      secret_access_key: "s",
      expiration: creds.expiration.toISOString(),
      region: "us-east-1",
    });
    for (let i = 0; i < 40; i++) {
      const t0 = performance.now();
      const it = client.chatStream(messages);
      await it.next();
      through.push(performance.now() - t0);
      for (let r = await it.next(); !r.done; r = await it.next());
    }
    client.close();
  } finally {
    await enclave.close();
    await fake.close();
  }
  const d = direct.slice(5).sort((a, b) => a - b);
  const t = through.slice(5).sort((a, b) => a - b);
  const dp = quantile(d, 0.5);
  const tp = quantile(t, 0.5);
  records.push({
    group: "chat",
    what: "time to first chunk",
    upstream_p50_ms: round(dp),
    enclave_p50_ms: round(tp),
    overhead_ms: round(tp - dp),
    ratio: round(tp / dp, 2),
  });
  say(
    `\nCHAT_STREAM time to first chunk (loopback Bedrock): upstream alone p50 ${round(dp)} ms, through the enclave p50 ${round(tp)} ms (+${round(tp - dp)} ms, x${round(tp / dp, 2)})`,
  );
}

export async function run({ json, filter } = {}) {
  const part = (name) => !filter || !filter.startsWith("inference-") || filter === `inference-${name}`;
  const records = [];
  const say = (s) => {
    if (!json) console.log(s);
  };
  if (part("seal")) await sealBench(say, records);
  if (part("seal")) await streamSealBench(say, records);
  if (part("predict")) await predictBench(say, records);
  if (part("chat")) await chatBench(say, records);
  return records.map((r) => ({ bench: "inference", ...r }));
}
