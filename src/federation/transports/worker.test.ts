// The worker transport: an agent in a worker thread answers like the same agent in this thread,
// errors included (same subclass, code and message across the thread boundary).
import { randomUUID } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgentWorker } from "../../agent/agent-worker.js";
import { ClientLevelDpRefusedError } from "../../agent/errors.js";
import { LocalAgent } from "../../agent/local-agent.js";
import { simulationTrustPolicy } from "../../attestation/policy/simulation.js";
import { SimulatedProvider } from "../../attestation/providers/software.js";
import { DatasetError } from "../../data/dataset-error.js";
import { EnclaveError } from "../../errors.js";
import { Network } from "../../model/network.js";
import { buildModelSpec } from "../../model/registry.js";
import { SeededRandom } from "../../random.js";
import { parseContract } from "../../schemas/contract.js";
import { FederationJob } from "../../schemas/federation.js";
import { kernels } from "../../tensor/backend.js";
import type { AgentHandle } from "../agent-handle.js";
import type { TrainTask } from "../task.js";
import { emptyLedgerCopier } from "../../../test/support/ledger-template.js";

const DATA = fileURLToPath(new URL("../../../data/", import.meta.url));
const DATASET = "breast-cancer-wisconsin.csv";
const model = buildModelSpec("SimpleMLP", { input_dim: 30, num_classes: 2, hidden: [4] });

function task(privacy: Record<string, unknown>, datasetId = DATASET): TrainTask {
  const job = parseContract(
    FederationJob,
    {
      job_id: randomUUID(),
      clients: ["site-a"],
      min_clients: 1,
      rounds: 1,
      strategy: "FED_AVG",
      privacy: { noise_multiplier: 1.2, max_grad_norm: 1, target_epsilon: 3, delta: 1e-5, ...privacy },
      dataset_id: datasetId,
      model_arch: "SimpleMLP",
    },
    "FederationJob",
  );
  const global = new Network(model, kernels(), new SeededRandom(1)).weights();
  return {
    job,
    round: 1,
    model,
    global,
    plan: { epochs: 1, batchSize: 32, learningRate: 0.05, momentum: 0 },
  };
}

/** How a call failed, as data: the class, code and message the caller sees. */
async function failure(p: Promise<unknown>) {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EnclaveError);
  const e = err as EnclaveError;
  return { cls: e.constructor, name: e.name, code: e.code, message: e.message };
}

describe("WorkerAgent: an agent in a worker thread behind the same AgentHandle", () => {
  let root: string;
  let local: AgentHandle;
  let worker: AgentHandle;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "enclave-worker-"));
    const seed = await emptyLedgerCopier(root);
    const site = (name: string) => {
      const home = join(root, name);
      mkdirSync(join(home, "data"), { recursive: true });
      seed(home);
      for (const f of [DATASET, "breast-cancer-wisconsin.schema.json"])
        copyFileSync(join(DATA, f), join(home, "data", f));
      return { id: "site-a", workspace: home, dataRoot: join(home, "data") };
    };
    const common = { policy: simulationTrustPolicy(), accountant: "rdp" as const, seed: 3 };
    local = await LocalAgent.start({
      ...site("local"),
      ...common,
      provider: new SimulatedProvider(),
      databaseUrl: "",
    });
    worker = await startAgentWorker({ ...site("worker"), ...common });
  });

  afterAll(async () => {
    await Promise.allSettled([local.close(), worker.close()]);
    rmSync(root, { recursive: true, force: true });
  });

  it("answers a budget probe with the same numbers as the same agent in this thread", async () => {
    const t = task({ mechanism: "DP_SGD" });
    expect(await worker.probe(t)).toEqual(await local.probe(t));
  });

  it("an agent's refusal arrives as the same subclass, code and message", async () => {
    const t = task({ mechanism: "DP_FEDAVG" });
    const inWorker = await failure(worker.probe(t));
    expect(inWorker).toEqual(await failure(local.probe(t)));
    expect(inWorker.cls).toBe(ClientLevelDpRefusedError);
    expect(inWorker.code).toBe("CLIENT_LEVEL_DP_NOT_ACCEPTED");
  });

  it("a Data Sentry refusal keeps its class and its fields across the thread", async () => {
    const t = task({ mechanism: "DP_SGD" }, "not-in-the-data-root.csv");
    const inWorker = await failure(worker.probe(t));
    expect(inWorker).toEqual(await failure(local.probe(t)));
    expect(inWorker.cls).toBe(DatasetError);
  });

  it("a crashed start is a typed error, and nothing is left running", async () => {
    await expect(
      startAgentWorker({
        id: "site-x",
        workspace: join(root, "missing", "\u0000"),
        dataRoot: join(root, "missing"),
        policy: simulationTrustPolicy(),
        accountant: "rdp",
      }),
    ).rejects.toBeInstanceOf(EnclaveError);
  });
});
