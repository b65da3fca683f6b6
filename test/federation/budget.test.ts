// Per-round privacy accounting across jobs: an agent whose next round would pass its budget is not
// invited, the job goes on while min_clients can, and ends cleanly when it cannot. Spent budget
// lives in each agent's ledger, so it carries over to later jobs and survives an agent restart.
import { randomUUID } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { simulationTrustPolicy } from "../../src/attestation/policy/simulation.js";
import { SimulatedProvider } from "../../src/attestation/providers/software.js";
import { Network } from "../../src/model/network.js";
import { buildModelSpec } from "../../src/model/registry.js";
import { computeEpsilon } from "../../src/privacy/accountant/index.js";
import { SeededRandom } from "../../src/random.js";
import { parseContract } from "../../src/schemas/contract.js";
import { FederationJob } from "../../src/schemas/federation.js";
import { kernels } from "../../src/tensor/backend.js";
import type { TensorMap } from "../../src/tensor/tensor.js";
import { evaluate } from "../../src/training/trainer.js";
import { AttestationGate } from "../../src/coordinator/attestation-gate.js";
import { runFederation, type JobResult } from "../../src/coordinator/coordinator.js";
import { LocalAgent, loadTrainingExamples } from "../../src/agent/local-agent.js";
import { createStrategy } from "../../src/strategies/factory.js";
import { emptyLedgerCopier } from "../support/ledger-template.js";

const DATA = fileURLToPath(new URL("../../data/", import.meta.url));
const DATASET = "breast-cancer-wisconsin.csv";
const SIGMA = 1.5;
const TARGET = 3;
const DELTA = 1e-5;
// Every site holds all 569 rows; at batch 32, Opacus' schedule is ceil(569/32) = 18 Poisson steps
// per epoch at q = 1/18. One round is one local epoch.
const STEPS_PER_ROUND = 18;
const Q = 1 / 18;
const model = buildModelSpec("SimpleMLP", { input_dim: 30, num_classes: 2, hidden: [8] });
const plan = { epochs: 1, batchSize: 32, learningRate: 0.05, momentum: 0 };

/** Epsilon of a dataset after `rounds` rounds in total (all its jobs), from the RDP accountant. */
const epsAfter = (rounds: number) =>
  computeEpsilon({
    accountant: "rdp",
    noiseMultiplier: SIGMA,
    sampleRate: Q,
    steps: rounds * STEPS_PER_ROUND,
    delta: DELTA,
  }).epsilon;

/** The first round r of a job (1-based) in which an agent that already spent `spent` rounds cannot go on. */
const exclusionRound = (spent: number) => {
  let r = 1;
  while (epsAfter(spent + r) <= TARGET) r++;
  return r;
};

describe("privacy budget across rounds and jobs (coordinator + agents, end to end)", () => {
  let root: string;
  let seedLedger: (workspace: string) => void;
  const agents = new Map<string, LocalAgent>();
  let evaluateOn: (w: TensorMap) => { accuracy: number; loss: number };

  const start = async (id: string) => {
    const home = join(root, id);
    mkdirSync(join(home, "data"), { recursive: true });
    seedLedger(home);
    for (const f of [DATASET, "breast-cancer-wisconsin.schema.json"])
      copyFileSync(join(DATA, f), join(home, "data", f));
    const agent = await LocalAgent.start({
      id,
      workspace: home,
      dataRoot: join(home, "data"),
      provider: new SimulatedProvider(),
      policy: simulationTrustPolicy(),
      accountant: "rdp",
      seed: 5,
      databaseUrl: "",
    });
    agents.set(id, agent);
    return agent;
  };

  const runJob = (ids: string[], minClients: number, rounds: number): Promise<JobResult> =>
    runFederation({
      job: parseContract(
        FederationJob,
        {
          job_id: randomUUID(),
          clients: ids,
          min_clients: minClients,
          rounds,
          strategy: "FED_AVG",
          privacy: {
            mechanism: "DP_SGD",
            noise_multiplier: SIGMA,
            max_grad_norm: 1,
            target_epsilon: TARGET,
            delta: DELTA,
          },
          dataset_id: DATASET,
          model_arch: "SimpleMLP",
        },
        "FederationJob",
      ),
      model,
      plan,
      agents: ids.map((id) => agents.get(id)!),
      initial: new Network(model, kernels(), new SeededRandom(1)).weights(),
      strategy: createStrategy({ name: "FED_AVG" }),
      gate: new AttestationGate(simulationTrustPolicy()),
      evaluate: evaluateOn,
      ordered: true,
    });

  const client = (r: JobResult, id: string) => r.clients.find((c) => c.id === id)!;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "enclave-budget-"));
    seedLedger = await emptyLedgerCopier(root);
    await Promise.all(["site-a", "site-b", "site-c"].map(start));
    const test = await loadTrainingExamples(join(root, "site-a", "data"), DATASET);
    const net = new Network(model, kernels(), new SeededRandom(0));
    evaluateOn = (w) => {
      net.loadWeights(w);
      return evaluate(net, test);
    };
  });

  afterAll(async () => {
    await Promise.allSettled([...agents.values()].map((a) => a.close()));
    rmSync(root, { recursive: true, force: true });
  });

  // The scenario is sequential: each job starts from the ledgers the previous one left.
  const PRE_SPENT = 6;

  it("job 1: site-c alone spends part of its budget, then its agent restarts", async () => {
    const r = await runJob(["site-c"], 1, PRE_SPENT);
    expect(r.status).toBe("completed");
    expect(r.rounds).toHaveLength(PRE_SPENT);
    // Each round is exactly one epoch of steps: the ledger's total matches the accountant's.
    r.rounds.forEach((round, i) => expect(round.epsilon["site-c"]).toBeCloseTo(epsAfter(i + 1), 9));
    await agents.get("site-c")!.close();
    await start("site-c"); // same workspace, fresh process state
  });

  it("job 2: the pre-spent site is not invited once its next round would pass the target; the job goes on", async () => {
    const k = exclusionRound(PRE_SPENT);
    expect(k).toBe(6); // by hand from the RDP values: eps(11 rounds) = 2.90, eps(12) = 3.03 (> 3)
    const rounds = 8;
    const r = await runJob(["site-a", "site-b", "site-c"], 2, rounds);

    expect(r.status).toBe("completed");
    expect(r.rounds.map((x) => x.clients)).toEqual(
      Array.from({ length: rounds }, (_, i) =>
        i + 1 < k ? ["site-a", "site-b", "site-c"] : ["site-a", "site-b"],
      ),
    );
    const c = client(r, "site-c");
    expect(c.state).toBe("budget_exhausted");
    expect(c.reason).toMatch(/next round would reach epsilon 3\.0\d\d > 3/);
    // Its budget carried over from job 1 and the restart: job 2's first round was its 7th.
    expect(r.rounds[0].epsilon["site-c"]).toBeCloseTo(epsAfter(PRE_SPENT + 1), 9);
    expect(c.epsilon).toBeCloseTo(epsAfter(PRE_SPENT + k - 1), 9);
    for (const id of ["site-a", "site-b"]) {
      expect(client(r, id).state).toBe("active");
      expect(client(r, id).epsilon).toBeCloseTo(epsAfter(rounds), 9);
    }
    for (const x of r.clients) expect(x.epsilon).toBeLessThanOrEqual(TARGET);
  });

  it("job 3: when fewer than min_clients can afford a round, the job ends cleanly", async () => {
    const spent = 8; // site-a and site-b, from job 2
    const k = exclusionRound(spent);
    expect(k).toBe(4);
    const r = await runJob(["site-a", "site-b", "site-c"], 2, 10);

    expect(r.status).toBe("insufficient_clients");
    expect(r.reason).toBe(`round ${k}: 0 client(s) can continue, fewer than min_clients 2`);
    expect(r.rounds).toHaveLength(k - 1);
    for (const round of r.rounds) expect(round.clients).toEqual(["site-a", "site-b"]);
    expect(r.clients.map((x) => x.state)).toEqual([
      "budget_exhausted",
      "budget_exhausted",
      "budget_exhausted",
    ]);
    expect(client(r, "site-a").epsilon).toBeCloseTo(epsAfter(spent + k - 1), 9);
    for (const x of r.clients) expect(x.epsilon).toBeLessThanOrEqual(TARGET);
    // The budget the agent's sidecar shows is the one its guard enforced.
    const shown = agents.get("site-a")!.service.budget();
    expect(shown.epsilon).toBeCloseTo(client(r, "site-a").epsilon, 9);
    expect(shown.remaining).toBeCloseTo(TARGET - shown.epsilon, 9);
  });
});
