// Federation across machines, each figure next to a baseline measured in the same run:
// - federation-transfer: a model of BENCH_FEDERATION_PARAMS float32 parameters (default 100M,
//   400 MB) sent to 3 agents and back over loopback mTLS with the project's model transfer
//   (safetensors bytes in 1 MiB chunks, SHA-256 on the last, ChunkAssembler on arrival), against
//   raw TLS socket throughput of the same bytes, same certificates, same machine.
// - federation-round: a round of 10 agents on a tiny model through runFederation in process
//   (real executors, DP-SGD, ledgers in memory), and the coordinator's part of it (round time
//   minus the slowest agent's task).
// The agents' network session (RemoteAgent) is measured here once it is on main; until then the
// network figures are reported as missing, never estimated.
//   --filter federation-transfer | federation-round  runs one part.
import { connect, createServer } from "node:tls";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { Executor } from "../dist/agent/executor.js";
import { AgentService } from "../dist/agent/agent-service.js";
import { runFederation } from "../dist/coordinator/coordinator.js";
import {
  applyStandardizer,
  fitStandardizer,
  iidPartition,
  loadDataset,
  partitionDataset,
} from "../dist/data/index.js";
import { chunkTensorMap, ChunkAssembler, DEFAULT_CHUNK_BYTES } from "../dist/federation/model-transfer.js";
import { createProjectCa, issueCertificate } from "../dist/identity/certificates.js";
import { Network } from "../dist/model/network.js";
import { buildModelSpec } from "../dist/model/registry.js";
import { serializeSafetensors } from "../dist/model/safetensors.js";
import { createAccountant } from "../dist/privacy/accountant/index.js";
import { BudgetLedger } from "../dist/privacy/budget-ledger.js";
import { SeededRandom } from "../dist/random.js";
import { FederationJob } from "../dist/schemas/federation.js";
import { openDatabase } from "../dist/storage/database.js";
import { schemaScoped } from "../dist/storage/schema-scope.js";
import { createStrategy } from "../dist/strategies/factory.js";
import { kernels } from "../dist/tensor/backend.js";
import { evaluate } from "../dist/training/trainer.js";

const DATA = new URL("../data/", import.meta.url).pathname;
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const AGENTS = 3;

async function credentials() {
  const ca = await createProjectCa("bench");
  const server = await issueCertificate(ca, {
    name: "coordinator",
    role: "coordinator",
    hosts: ["localhost"],
  });
  const clients = [];
  for (let i = 0; i < AGENTS; i++)
    clients.push(await issueCertificate(ca, { name: `site-${i}`, role: "site" }));
  return { ca: ca.certPem, server, clients };
}

/** An mTLS server on loopback; `onSocket` gets each authorised socket. */
async function tlsServer(creds, onSocket) {
  const server = createServer(
    {
      cert: creds.server.certPem,
      key: creds.server.keyPem,
      ca: creds.ca,
      requestCert: true,
      rejectUnauthorized: true,
    },
    onSocket,
  );
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return server;
}

function tlsClient(creds, i, port) {
  return new Promise((resolve, reject) => {
    const s = connect({
      host: "127.0.0.1",
      port,
      servername: "localhost",
      ca: creds.ca,
      cert: creds.clients[i].certPem,
      key: creds.clients[i].keyPem,
    });
    s.once("secureConnect", () => resolve(s));
    s.once("error", reject);
  });
}

const writeAll = (socket, buf) => new Promise((r) => (socket.write(buf) ? r() : socket.once("drain", r)));

/** Read exactly `n` bytes (n > 0), counting only. */
function drain(socket, n) {
  return new Promise((resolve, reject) => {
    let got = 0;
    const on = (b) => {
      got += b.length;
      if (got >= n) {
        socket.off("data", on);
        resolve();
      }
    };
    socket.on("data", on);
    socket.once("error", reject);
  });
}

/** Length-prefixed frames: the chunk's header as JSON, then its bytes. */
function frameChunk(c) {
  const head = Buffer.from(JSON.stringify({ ...c, data: undefined, n: c.data.length }));
  const len = Buffer.alloc(8);
  len.writeUInt32LE(head.length, 0);
  len.writeUInt32LE(c.data.length, 4);
  return [len, head, c.data];
}

/** Reassemble framed chunks with the project's ChunkAssembler until it yields the tensor map. */
function receiveModel(socket, maxBytes) {
  return new Promise((resolve, reject) => {
    // Buffers kept as a list and joined once a whole frame is there (no copy per TLS record).
    const parts = [];
    let have = 0;
    const take = (n) => {
      const whole = parts.length === 1 ? parts[0] : Buffer.concat(parts, have);
      parts.length = 0;
      const out = whole.subarray(0, n);
      if (whole.length > n) parts.push(whole.subarray(n));
      have -= n;
      return out;
    };
    const peek = () => (parts[0].length >= 8 ? parts[0] : Buffer.concat(parts, have));
    let need = 8;
    let header = null;
    let assembler = null;
    const on = (b) => {
      parts.push(b);
      have += b.length;
      while (have >= need) {
        if (!header) {
          const p = peek();
          header = { h: p.readUInt32LE(0), d: p.readUInt32LE(4) };
          need = 8 + header.h + header.d;
          continue;
        }
        const frame = take(need);
        const head = JSON.parse(frame.subarray(8, 8 + header.h).toString());
        const data = frame.subarray(8 + header.h);
        header = null;
        need = 8;
        assembler ??= new ChunkAssembler(head.transferId, head.part, maxBytes);
        let out;
        try {
          out = assembler.add({ ...head, data });
        } catch (e) {
          reject(e);
          return;
        }
        if (out) {
          socket.off("data", on);
          resolve(out);
          return;
        }
      }
    };
    socket.on("data", on);
    socket.once("error", reject);
  });
}

async function sendModel(socket, id, model) {
  for (const c of chunkTensorMap(id, "weights", model, DEFAULT_CHUNK_BYTES))
    for (const part of frameChunk(c)) await writeAll(socket, part);
}

function bigModel(params) {
  // Ten tensors, like a deep model's layers; the values only need to be bytes.
  const per = Math.floor(params / 10);
  const m = new Map();
  for (let i = 0; i < 10; i++) {
    const data = new Float32Array(per);
    for (let j = 0; j < per; j += 1024) data[j] = j;
    m.set(`layer${i}.weight`, { shape: [per], data });
  }
  return m;
}

/** Down to AGENTS sockets at once, then back up from each: total bytes / seconds. */
async function timed(clients, down, up) {
  const t0 = performance.now();
  await Promise.all(clients.map((c, i) => down(c, i)));
  const t1 = performance.now();
  await Promise.all(clients.map((c, i) => up(c, i)));
  const t2 = performance.now();
  return { down: (t1 - t0) / 1000, up: (t2 - t1) / 1000 };
}

async function transferBench(say, records) {
  const params = Number(process.env.BENCH_FEDERATION_PARAMS ?? 100_000_000);
  const creds = await credentials();
  const model = bigModel(params);
  const bytes = serializeSafetensors(model);
  const mb = (bytes.length * AGENTS) / 1e6;
  say(
    `model transfer: ${(params / 1e6).toFixed(0)}M parameters (${(bytes.length / 1e6).toFixed(0)} MB) to and from ${AGENTS} agents, loopback mTLS`,
  );

  // Baseline: the same bytes as one raw write per socket, each way.
  const rawServerSockets = [];
  const raw = await tlsServer(creds, (s) => rawServerSockets.push(s));
  const rawClients = [];
  for (let i = 0; i < AGENTS; i++) rawClients.push(await tlsClient(creds, i, raw.address().port));
  while (rawServerSockets.length < AGENTS) await sleep(10);
  const base = await timed(
    rawClients,
    (c, i) => Promise.all([writeAll(rawServerSockets[i], bytes), drain(c, bytes.length)]),
    (c, i) => Promise.all([writeAll(c, bytes), drain(rawServerSockets[i], bytes.length)]),
  );
  for (const c of rawClients) c.destroy();
  raw.close();

  // The project's model transfer: serialise, chunk and hash on the sender; assemble, verify and parse on arrival.
  const srvSockets = [];
  const srv = await tlsServer(creds, (s) => srvSockets.push(s));
  const clients = [];
  for (let i = 0; i < AGENTS; i++) clients.push(await tlsClient(creds, i, srv.address().port));
  while (srvSockets.length < AGENTS) await sleep(10);
  const max = bytes.length + 1;
  const chunked = await timed(
    clients,
    (c, i) => Promise.all([sendModel(srvSockets[i], `down-${i}`, model), receiveModel(c, max)]),
    (c, i) => Promise.all([sendModel(c, `up-${i}`, model), receiveModel(srvSockets[i], max)]),
  );
  for (const c of clients) c.destroy();
  srv.close();

  const rate = (s) => mb / s;
  say("path                                   down MB/s   up MB/s   throughput / raw TLS (down, up)");
  say(
    `raw TLS socket (baseline)              ${rate(base.down).toFixed(0).padStart(9)} ${rate(base.up).toFixed(0).padStart(9)}`,
  );
  say(
    `chunked safetensors + SHA-256 (TLS)    ${rate(chunked.down).toFixed(0).padStart(9)} ${rate(chunked.up).toFixed(0).padStart(9)}   ${round(base.down / chunked.down, 2)}, ${round(base.up / chunked.up, 2)}`,
  );
  say("agent session (ConnectRPC, RemoteAgent): not measured, the session is not on main yet");
  records.push(
    {
      op: "transfer-raw-tls",
      params,
      mb_per_s_down: round(rate(base.down), 1),
      mb_per_s_up: round(rate(base.up), 1),
    },
    {
      op: "transfer-chunked-tls",
      params,
      mb_per_s_down: round(rate(chunked.down), 1),
      mb_per_s_up: round(rate(chunked.up), 1),
      ratio_down: round(base.down / chunked.down, 2),
      ratio_up: round(base.up / chunked.up, 2),
    },
    { op: "transfer-session", params, missing: "the agent session (RemoteAgent) is not on main" },
  );
}

const TRUSTED = {
  node_id: "bench",
  hardware_type: "SIMULATED",
  enclave_signature: "bench",
  measurement_hash: "00",
  status: "TRUSTED",
};

async function roundBench(say, records) {
  const n = 10;
  const rounds = 5;
  const k = kernels();
  const { dataset } = await loadDataset(DATA, "breast-cancer-wisconsin.csv");
  const all = applyStandardizer(dataset, fitStandardizer(dataset));
  const shards = partitionDataset(all, iidPartition(all.rows, n, new SeededRandom(1)));
  const db = await openDatabase({ workspace: "", url: "", memory: true });
  const ids = shards.map((_, i) => `site-${i}`);
  const job = FederationJob.parse({
    job_id: "b3c4d5e6-f7a8-4b9c-8d0e-1f2a3b4c5d6e",
    clients: ids,
    min_clients: n,
    rounds,
    strategy: "FED_AVG",
    privacy: { mechanism: "DP_SGD", noise_multiplier: 5, max_grad_norm: 1, target_epsilon: 5, delta: 1e-5 },
    dataset_id: "bench.csv",
    model_arch: "SimpleMLP",
  });
  const spec = buildModelSpec("SimpleMLP", { input_dim: all.numFeatures, num_classes: 2, hidden: [8] });
  const taskSeconds = new Map();
  const agents = [];
  for (const [i, id] of ids.entries()) {
    const rng = (l) => SeededRandom.derive("bench", `${id}/${l}`);
    const executor = new Executor({
      service: new AgentService(id),
      attest: async () => TRUSTED,
      loadDataset: async () => shards[i],
      ledger: await BudgetLedger.open(await schemaScoped(db, `site_${i}`)),
      accountantFromHistory: (h) => createAccountant("rdp", h),
      kernels: k,
      noise: rng("noise"),
      sampling: rng("sampling"),
      init: rng("init"),
    });
    agents.push({
      id,
      evidence: async () => {
        throw new Error("admit is stubbed");
      },
      probe: (t) => executor.probe(t),
      run: async (t) => {
        const t0 = performance.now();
        const out = await executor.run(t);
        const s = (performance.now() - t0) / 1000;
        taskSeconds.set(t.round, Math.max(taskSeconds.get(t.round) ?? 0, s));
        return out;
      },
      close: async () => {},
    });
  }
  const evalNet = new Network(spec, k, new SeededRandom(0));
  const result = await runFederation({
    job,
    model: spec,
    plan: { epochs: 1, batchSize: 16, learningRate: 0.05, momentum: 0.9 },
    agents,
    initial: new Network(spec, k, new SeededRandom(2)).weights(),
    strategy: createStrategy({ name: "FED_AVG" }),
    gate: { admit: async () => TRUSTED },
    evaluate: (w) => {
      evalNet.loadWeights(w);
      return evaluate(evalNet, all);
    },
  });
  await db.close();
  // Round 1 warms up (JIT, ledgers' first reservations): report the rest.
  const later = result.rounds.slice(1);
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const roundMs = mean(later.map((r) => r.seconds * 1000));
  const slowestMs = mean(later.map((r) => taskSeconds.get(r.round) * 1000));
  say(
    `round of ${n} agents, tiny model (SimpleMLP [8], ${all.numFeatures} features), in process, rounds 2-${rounds}:`,
  );
  say(
    `  round ${roundMs.toFixed(1)} ms, slowest agent's task ${slowestMs.toFixed(1)} ms, coordinator beyond training ${(roundMs - slowestMs).toFixed(1)} ms`,
  );
  say("  network path minus in-process path: not measured, the agent session is not on main yet");
  records.push(
    {
      op: "round-in-process",
      agents: n,
      round_ms: round(roundMs, 1),
      slowest_task_ms: round(slowestMs, 1),
      overhead_ms: round(roundMs - slowestMs, 1),
    },
    {
      op: "round-network-minus-in-process",
      agents: n,
      missing: "the agent session (RemoteAgent) is not on main",
    },
  );
}

export async function run({ filter }) {
  const records = [];
  const say = (s) => console.log(s);
  const want = (part) =>
    !filter || filter === "federation" || filter === part || !filter.startsWith("federation-");
  if (want("federation-transfer")) await transferBench(say, records);
  if (want("federation-round")) await roundBench(say, records);
  return records;
}
