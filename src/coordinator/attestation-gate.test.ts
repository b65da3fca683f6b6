// End-to-end attestation gate: agents whose evidence does not verify against the coordinator's
// fresh nonce and their presented key are excluded before they see anything of the job.
import { randomBytes, randomUUID } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bindReportData } from "../attestation/binding.js";
import type { Evidence } from "../attestation/evidence.js";
import { parseTrustPolicy } from "../attestation/policy/load.js";
import { InsecureProvider, SimulatedProvider } from "../attestation/providers/software.js";
import { Network } from "../model/network.js";
import { buildModelSpec } from "../model/registry.js";
import { SeededRandom } from "../random.js";
import { parseContract } from "../schemas/contract.js";
import { FederationJob } from "../schemas/federation.js";
import { kernels } from "../tensor/backend.js";
import type { TensorMap } from "../tensor/tensor.js";
import { evaluate } from "../training/trainer.js";
import { runFederation } from "./coordinator.js";
import type { AgentHandle } from "../federation/agent-handle.js";
import { LocalAgent, loadTrainingExamples } from "../agent/local-agent.js";
import { simulationTrustPolicy } from "../attestation/policy/simulation.js";
import { AttestationGate } from "./attestation-gate.js";
import { createStrategy } from "../strategies/factory.js";
import type { BudgetProbe, TaskOutcome, TrainTask } from "../federation/task.js";
import { emptyLedgerCopier } from "../../test/support/ledger-template.js";

const DATA = fileURLToPath(new URL("../../data/", import.meta.url));
const DATASET = "breast-cancer-wisconsin.csv";
const model = buildModelSpec("SimpleMLP", { input_dim: 30, num_classes: 2, hidden: [8] });
const plan = { epochs: 1, batchSize: 32, learningRate: 0.05, momentum: 0 };

type Calls = { evidence: number; probe: number; run: number };

/** Wraps a genuine agent to count what the coordinator asks of it. */
class Counted implements AgentHandle {
  readonly calls: Calls = { evidence: 0, probe: 0, run: 0 };
  constructor(private readonly inner: AgentHandle) {}
  get id(): string {
    return this.inner.id;
  }
  evidence(nonce: Uint8Array) {
    this.calls.evidence++;
    return this.inner.evidence(nonce);
  }
  probe(task: TrainTask): Promise<BudgetProbe> {
    this.calls.probe++;
    return this.inner.probe(task);
  }
  run(task: TrainTask): Promise<TaskOutcome> {
    this.calls.run++;
    return this.inner.run(task);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * An agent that presents forged or mis-bound evidence. Its probe claims plenty of budget and its
 * run would happily "train": only the attestation gate stands between it and the job.
 */
class Impostor implements AgentHandle {
  readonly calls: Calls = { evidence: 0, probe: 0, run: 0 };
  /** Everything of the job it was sent (a task carries the global model). */
  readonly received: TrainTask[] = [];
  constructor(
    readonly id: string,
    private readonly forge: (nonce: Uint8Array) => Promise<{ evidence: Evidence; publicKey: Uint8Array }>,
  ) {}
  evidence(nonce: Uint8Array) {
    this.calls.evidence++;
    return this.forge(nonce);
  }
  async probe(task: TrainTask): Promise<BudgetProbe> {
    this.calls.probe++;
    this.received.push(task);
    return { epsilon: 0, nextEpsilon: 0.1, limit: 3, examples: 100 };
  }
  async run(task: TrainTask): Promise<TaskOutcome> {
    this.calls.run++;
    this.received.push(task);
    return {
      clientId: this.id,
      status: "ok",
      weights: task.global,
      numExamples: 100,
      metrics: { steps: 1, epsilon: 0 },
      dropped: 0,
    };
  }
  async close(): Promise<void> {}
}

function impostors(): Impostor[] {
  const genuine = new SimulatedProvider();
  const own = new SimulatedProvider();
  const insecure = new InsecureProvider();
  return [
    // A replay: well-formed evidence bound to a nonce the coordinator never issued.
    new Impostor("replay", async () => ({
      evidence: await own.collect(bindReportData(randomBytes(32), own.publicKey)),
      publicKey: own.publicKey,
    })),
    // A relay: a genuine node's evidence for this very nonce, but presented with the impostor's key.
    new Impostor("relay", async (nonce) => ({
      evidence: await genuine.collect(bindReportData(nonce, genuine.publicKey)),
      publicKey: own.publicKey,
    })),
    // Tampered: correctly bound evidence with one byte of the signed body flipped.
    new Impostor("tampered", async (nonce) => {
      const e = await own.collect(bindReportData(nonce, own.publicKey));
      const bytes = Uint8Array.from(e.bytes);
      bytes[Math.floor(bytes.length / 2)] ^= 0x01;
      return { evidence: { ...e, bytes }, publicKey: own.publicKey };
    }),
    // Declares no protection at all: correctly bound, but its kind is not in the policy.
    new Impostor("insecure", async (nonce) => ({
      evidence: await insecure.collect(bindReportData(nonce, insecure.publicKey)),
      publicKey: insecure.publicKey,
    })),
  ];
}

/** The coordinator's gate, as `enclave simulate` builds it: single-use nonces, simulated evidence allowed. */
const gate = () => new AttestationGate(simulationTrustPolicy());

/** An agent that answers challenges with `providers[i]` on its i-th challenge (the last one after that). */
function presenting(id: string, ...providers: SimulatedProvider[] | InsecureProvider[]): AgentHandle {
  let i = 0;
  return {
    id,
    evidence: async (nonce) => {
      const p = providers[Math.min(i++, providers.length - 1)];
      return { evidence: await p.collect(bindReportData(nonce, p.publicKey)), publicKey: p.publicKey };
    },
    probe: () => Promise.reject(new Error("not used")),
    run: () => Promise.reject(new Error("not used")),
    close: async () => {},
  };
}

function job(clients: string[], minClients: number, rounds: number) {
  return parseContract(
    FederationJob,
    {
      job_id: randomUUID(),
      clients,
      min_clients: minClients,
      rounds,
      strategy: "FED_AVG",
      privacy: {
        mechanism: "DP_SGD",
        noise_multiplier: 1.5,
        max_grad_norm: 1,
        target_epsilon: 3,
        delta: 1e-5,
      },
      dataset_id: DATASET,
      model_arch: "SimpleMLP",
    },
    "FederationJob",
  );
}

describe("attestation gate (coordinator + agents, end to end)", () => {
  let root: string;
  let seedLedger: (workspace: string) => void;
  let good: Counted[];
  let strict: Counted;
  let strictAgent: LocalAgent;
  let evaluateOn: (w: TensorMap) => { accuracy: number; loss: number };

  const site = (id: string) => {
    const home = join(root, id);
    mkdirSync(join(home, "data"), { recursive: true });
    seedLedger(home);
    for (const f of [DATASET, "breast-cancer-wisconsin.schema.json"])
      copyFileSync(join(DATA, f), join(home, "data", f));
    return { id, workspace: home, dataRoot: join(home, "data") };
  };

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "enclave-gate-"));
    seedLedger = await emptyLedgerCopier(root);
    const start = (id: string, policy = simulationTrustPolicy()) =>
      LocalAgent.start({
        ...site(id),
        provider: new SimulatedProvider(),
        policy,
        accountant: "rdp",
        seed: 11,
        databaseUrl: "",
      });
    good = [new Counted(await start("site-a")), new Counted(await start("site-b"))];
    // Its own policy refuses simulated evidence: the agent-side half of the gate.
    strictAgent = await start("site-strict", parseTrustPolicy({}));
    strict = new Counted(strictAgent);
    const test = await loadTrainingExamples(join(root, "site-a", "data"), DATASET);
    const net = new Network(model, kernels(), new SeededRandom(0));
    evaluateOn = (w) => {
      net.loadWeights(w);
      return evaluate(net, test);
    };
  });

  afterAll(async () => {
    await Promise.allSettled([...good, strict].map((a) => a.close()));
    rmSync(root, { recursive: true, force: true });
  });

  const run = (agents: AgentHandle[], minClients: number, rounds: number) =>
    runFederation({
      job: job(
        agents.map((a) => a.id),
        minClients,
        rounds,
      ),
      model,
      plan,
      agents,
      initial: new Network(model, kernels(), new SeededRandom(1)).weights(),
      strategy: createStrategy({ name: "FED_AVG" }),
      gate: gate(),
      evaluate: evaluateOn,
      ordered: true,
    });

  it("excludes replayed, relayed, tampered and insecure evidence before sending any task", async () => {
    const bad = impostors();
    const result = await run([good[0], ...bad, good[1]], 2, 2);

    expect(result.status).toBe("completed");
    expect(result.rounds.map((r) => r.clients)).toEqual([
      ["site-a", "site-b"],
      ["site-a", "site-b"],
    ]);
    for (const b of bad) {
      const state = result.clients.find((c) => c.id === b.id)!;
      expect(state.state, b.id).toBe("untrusted");
      // Asked for evidence once (round 1), then never contacted again.
      expect(b.calls, b.id).toEqual({ evidence: 1, probe: 0, run: 0 });
      // Not even a budget probe: a task carries the global model, which is the model owner's to protect.
      expect(b.received, b.id).toHaveLength(0);
    }
    // The genuine agents are re-attested with a fresh nonce every round and trained every round.
    for (const g of good) expect(g.calls).toEqual({ evidence: 2, probe: 2, run: 2 });
  });

  it("fails closed: when the attested agents are fewer than min_clients, nobody trains", async () => {
    const before = good.map((g) => ({ ...g.calls }));
    const bad = impostors();
    const result = await run([...bad.slice(0, 2), good[0], good[1]], 3, 2);

    expect(result.status).toBe("insufficient_clients");
    expect(result.reason).toMatch(/round 1: 2 client\(s\) can continue, fewer than min_clients 3/);
    expect(result.rounds).toHaveLength(0);
    for (const b of bad.slice(0, 2)) expect(b.calls.run + b.calls.probe).toBe(0);
    good.forEach((g, i) => expect(g.calls.run).toBe(before[i].run));
  });

  it("an agent whose own policy rejects its evidence refuses the task and spends no budget", async () => {
    const result = await run([good[0], strict, good[1]], 2, 1);

    expect(result.status).toBe("completed");
    expect(result.rounds[0].clients).toEqual(["site-a", "site-b"]);
    const s = result.clients.find((c) => c.id === "site-strict")!;
    expect(s.state).not.toBe("active");
    expect(s.reason).toMatch(/^ATTESTATION_NOT_TRUSTED/);
    expect(s.epsilon).toBe(0);
    // The refusal came before the Data Sentry and the Privacy Guard: no step, no ledger entry.
    const service = strictAgent.service;
    expect(service.budget().steps).toBe(0);
    expect(service.metrics()).toMatch(/^enclave_tasks_refused_total 1$/m);
    expect(service.metrics()).toMatch(/^enclave_train_steps_total 0$/m);
    expect(service.attestation()?.status).toBe("UNTRUSTED");
  });
});

describe("AttestationGate: single-use nonces and node-key pinning", () => {
  it("pins a node's key at its first trusted admission and refuses the same id with another key", async () => {
    const g = gate();
    const own = new SimulatedProvider();
    const other = new SimulatedProvider();
    const node = presenting("site-a", own, other);
    expect((await g.admit(node)).status).toBe("TRUSTED");
    expect(g.pinnedKey("site-a")).toBe(Buffer.from(own.publicKey).toString("hex"));
    // Genuine evidence, correctly bound to the fresh nonce, but for a different key.
    await expect(g.admit(node)).rejects.toMatchObject({ code: "NODE_KEY_CHANGED", name: "CoordinatorError" });
    // The pinned key is still the first one, and that node is still admitted.
    expect((await g.admit(presenting("site-a", own))).status).toBe("TRUSTED");
  });

  it("pins nothing on an untrusted admission: an impostor's first try does not lock out the real node", async () => {
    const g = gate();
    expect((await g.admit(presenting("site-b", new InsecureProvider()))).status).not.toBe("TRUSTED");
    expect(g.pinnedKey("site-b")).toBeUndefined();
    expect((await g.admit(presenting("site-b", new SimulatedProvider()))).status).toBe("TRUSTED");
  });

  it("challenges with a fresh nonce every time: evidence for an earlier nonce is refused", async () => {
    const g = gate();
    const p = new SimulatedProvider();
    let first: Uint8Array | undefined;
    const replayer: AgentHandle = {
      ...presenting("site-c", p),
      evidence: async (nonce) => {
        first ??= nonce;
        return { evidence: await p.collect(bindReportData(first, p.publicKey)), publicKey: p.publicKey };
      },
    };
    expect((await g.admit(replayer)).status).toBe("TRUSTED");
    expect((await g.admit(replayer)).status).not.toBe("TRUSTED");
  });

  it("over a session binds the TLS client key it saw: evidence naming or bound to another key is refused", async () => {
    const g = gate();
    const p = new SimulatedProvider();
    const tlsA = randomBytes(91);
    const tlsB = randomBytes(91);
    const session = (
      id: string,
      channelKey: Uint8Array,
      bind: Uint8Array,
      claim: Uint8Array,
    ): AgentHandle => ({
      ...presenting(id, p),
      channelKey,
      evidence: async (nonce) => ({
        evidence: await p.collect(bindReportData(nonce, bind)),
        publicKey: claim,
      }),
    });
    // Honest: bound to its own session's key.
    expect((await g.admit(session("site-a", tlsA, tlsA, tlsA))).status).toBe("TRUSTED");
    // Relay, claiming the victim's key: refused before appraisal.
    await expect(g.admit(session("site-b", tlsB, tlsA, tlsA))).rejects.toMatchObject({
      code: "EVIDENCE_KEY_MISMATCH",
    });
    // Relay, claiming its own key over evidence bound to the victim's: the binding fails.
    expect((await g.admit(session("site-b", tlsB, tlsA, tlsB))).status).not.toBe("TRUSTED");
    expect(g.pinnedKey("site-b")).toBeUndefined();
  });
});
