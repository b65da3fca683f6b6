// RemoteAgent, the coordinator's handle on an agent's network session, against a scripted link:
// every reply is matched to a pending call by request id, so a late, unknown or duplicate update
// is discarded (never handed to the aggregation twice), and a session that ends fails its calls.
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { SessionRequestSchema, type SessionRequest } from "../../gen/agent/v1/session_pb.js";
import { buildModelSpec } from "../../model/registry.js";
import { FederationJob } from "../../schemas/federation.js";
import type { TensorMap } from "../../tensor/tensor.js";
import { chunkTensorMap } from "../model-transfer.js";
import type { TrainTask } from "../task.js";
import { encodeOutcome } from "../task-wire.js";
import { RemoteAgent, type SessionLink } from "./network.js";
import { chunkToWire, type ResponseInit } from "./session-wire.js";

const JOB = FederationJob.parse({
  job_id: "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b",
  clients: ["site-a"],
  min_clients: 1,
  rounds: 1,
  strategy: "FED_AVG",
  privacy: { mechanism: "DP_SGD", noise_multiplier: 1.1, max_grad_norm: 1, target_epsilon: 3, delta: 1e-5 },
  dataset_id: "d.csv",
  model_arch: "LogisticRegression",
});
const global: TensorMap = new Map([["w", { shape: [2, 1], data: Float32Array.of(1, 2) }]]);
const task: TrainTask = {
  job: JOB,
  round: 1,
  model: buildModelSpec("LogisticRegression", { input_dim: 2, num_classes: 2 }),
  global,
  plan: { epochs: 1, batchSize: 4, learningRate: 0.1, momentum: 0 },
};
const TRUSTED = {
  node_id: "site-a",
  hardware_type: "SIMULATED",
  enclave_signature: "x",
  measurement_hash: "y",
  status: "TRUSTED",
} as const;

function scripted(): { link: SessionLink; sent: ResponseInit[]; closed: string[] } {
  const sent: ResponseInit[] = [];
  const closed: string[] = [];
  return {
    sent,
    closed,
    link: { send: async (m) => void sent.push(m), close: (r) => void closed.push(r.code) },
  };
}

const req = (init: Parameters<typeof create<typeof SessionRequestSchema>>[1]): SessionRequest =>
  create(SessionRequestSchema, init);

/** The agent's whole reply to run request `id`: outcome, then the update's chunks. */
function update(id: bigint, weights: TensorMap, tamper = false): SessionRequest[] {
  const { json } = encodeOutcome({
    clientId: "claimed-by-agent",
    status: "ok",
    weights,
    numExamples: 10,
    metrics: { loss: 0.5, steps: 3 },
    dropped: 0,
  });
  const transferId = `u${id}`;
  const chunks = [...chunkTensorMap(transferId, "weights", weights, 16)].map((c) => {
    const w = chunkToWire(c);
    if (tamper && c.last) w.sha256 = "0".repeat(64);
    return req({ kind: { case: "updateChunk", value: w } });
  });
  return [
    req({ kind: { case: "outcome", value: { requestId: id, outcomeJson: json, transferId } } }),
    ...chunks,
  ];
}

function connected(o: ConstructorParameters<typeof RemoteAgent>[1] = {}) {
  const agent = new RemoteAgent("site-a", o);
  const s = scripted();
  agent.attach(s.link, new Uint8Array([1, 2, 3]));
  agent.attested(TRUSTED, 60_000);
  return { agent, ...s };
}

const runId = (sent: ResponseInit[]) => {
  const offer = sent.find((m) => m.kind?.case === "task");
  return (offer?.kind?.value as { requestId: bigint }).requestId;
};

describe("RemoteAgent", () => {
  it("sends the task and the global model in chunks, and takes the update once: a duplicate is discarded", async () => {
    const { agent, link, sent } = connected({ chunkBytes: 8 });
    const running = agent.run(task);
    await new Promise((r) => setImmediate(r));
    expect(sent.filter((m) => m.kind?.case === "globalChunk").length).toBeGreaterThan(1);
    const id = runId(sent);
    const reply = update(id, new Map([["w", { shape: [2, 1], data: Float32Array.of(3, 4) }]]));
    for (const m of reply) agent.receive(link, m);
    const out = await running;
    expect(out.clientId).toBe("site-a");
    expect([...out.weights.get("w")!.data]).toEqual([3, 4]);
    for (const m of reply) agent.receive(link, m);
    expect(agent.discarded).toBe(reply.length);
  });

  it("ends a run at its deadline (AGENT_DEADLINE); the update that comes later is discarded", async () => {
    const { agent, link, sent } = connected({ runTimeoutMs: 30 });
    await expect(agent.run(task)).rejects.toMatchObject({ code: "AGENT_DEADLINE", name: "ProtocolError" });
    for (const m of update(runId(sent), global)) agent.receive(link, m);
    expect(agent.discarded).toBeGreaterThan(0);
  });

  it("fails calls in flight when the session ends, and refuses calls until the agent is back", async () => {
    const { agent, link } = connected();
    const running = agent.run(task);
    agent.detach(link, "killed");
    await expect(running).rejects.toMatchObject({ code: "AGENT_DISCONNECTED" });
    await expect(agent.evidence(new Uint8Array(32))).rejects.toMatchObject({ code: "AGENT_NOT_CONNECTED" });
    expect(() => agent.probe(task)).toThrow(/no task for site-a: disconnected/);
    // A new session of the same node attaches to the same handle.
    const next = scripted();
    agent.attach(next.link, new Uint8Array([1, 2, 3]));
    expect(agent.connected).toBe(true);
    expect(agent.trusted).toBe(false);
  });

  it("gives no task to an agent whose attestation failed or lapsed", async () => {
    const { agent } = connected();
    agent.attested(null, 0, "CODE: evidence refused");
    expect(() => agent.run(task)).toThrow(/no task for site-a: CODE: evidence refused/);
    agent.attested(TRUSTED, -1);
    expect(() => agent.probe(task)).toThrow(/attestation lapsed/);
  });

  it("refuses an update whose bytes do not match their SHA-256", async () => {
    const { agent, link, sent } = connected();
    const running = agent.run(task);
    await new Promise((r) => setImmediate(r));
    for (const m of update(runId(sent), global, true)) agent.receive(link, m);
    await expect(running).rejects.toMatchObject({ code: "TRANSFER_HASH_MISMATCH" });
  });

  it("turns an agent's Failure into the same typed error", async () => {
    const { agent, link, sent } = connected();
    const running = agent.run(task);
    await new Promise((r) => setImmediate(r));
    agent.receive(
      link,
      req({
        kind: {
          case: "failure",
          value: { requestId: runId(sent), name: "AgentError", code: "MODEL_DATA_MISMATCH", message: "m" },
        },
      }),
    );
    await expect(running).rejects.toMatchObject({ name: "AgentError", code: "MODEL_DATA_MISMATCH" });
  });
});
