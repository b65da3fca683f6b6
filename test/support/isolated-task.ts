import { randomUUID } from "node:crypto";
import { resolve } from "node:path";
import type { RoundRuntime } from "../../src/agent/isolated-round.js";
import { LocalAgent } from "../../src/agent/local-agent.js";
import { simulationTrustPolicy } from "../../src/attestation/policy/simulation.js";
import { SimulatedProvider } from "../../src/attestation/providers/software.js";
import { readChain } from "../../src/audit/chain.js";
import type { TrainTask } from "../../src/federation/task.js";
import { Network } from "../../src/model/network.js";
import { buildModelSpec } from "../../src/model/registry.js";
import { BudgetLedger } from "../../src/privacy/budget-ledger.js";
import { SeededRandom } from "../../src/random.js";
import { parseContract } from "../../src/schemas/contract.js";
import { FederationJob } from "../../src/schemas/federation.js";
import { openDatabase } from "../../src/storage/database.js";
import { kernels } from "../../src/tensor/backend.js";
import type { TensorMap } from "../../src/tensor/tensor.js";
import type { LocalTrainingOptions } from "../../src/training/local-training.js";

/**
 * The small seeded DP task the isolated-runtime tests train in-process and in a guest: 455 training
 * rows of the bundled breast-cancer data, one epoch at batch 32 (15 steps), a one-layer MLP.
 */
export const SMALL_TASK: Omit<LocalTrainingOptions, "workspace"> = {
  datasetFile: resolve("data/breast-cancer-wisconsin.csv"),
  arch: "SimpleMLP",
  hidden: [8],
  epochs: 1,
  targetEpsilon: 2,
  delta: 1e-5,
  maxGradNorm: 1,
  batchSize: 32,
  learningRate: 0.05,
  momentum: 0.9,
  accountant: "rdp",
  testFraction: 0.2,
  seed: "isolated-runtime",
};

/** The same arithmetic in a guest as here: one native CPU path, one thread (the guest gets these pins). */
export function pinKernels(): void {
  process.env.ENCLAVE_KERNELS_CPU = "generic";
  process.env.ENCLAVE_THREADS = "1";
}

/** The data root the isolated-round tests' agents read: the bundled data (the SMALL_TASK's files). */
export const ROUND_DATA_ROOT = resolve("data");

/**
 * A federated round on the same bundled data, for an agent: the SMALL_TASK's model and batch, one
 * local epoch; `strategy` SCAFFOLD exercises the client control variate the host keeps between rounds.
 */
export function smallRound(
  o: { jobId?: string; strategy?: "FED_AVG" | "SCAFFOLD"; round?: number; global?: TensorMap } = {},
): TrainTask {
  const model = buildModelSpec("SimpleMLP", { input_dim: 30, num_classes: 2, hidden: [8] });
  const strategy = o.strategy ?? "FED_AVG";
  const job = parseContract(
    FederationJob,
    {
      job_id: o.jobId ?? randomUUID(),
      clients: ["site-a", "site-b"],
      min_clients: 1,
      rounds: 2,
      strategy,
      privacy: {
        mechanism: "DP_SGD",
        noise_multiplier: 1.5,
        max_grad_norm: 1,
        target_epsilon: 3,
        delta: 1e-5,
      },
      dataset_id: "breast-cancer-wisconsin.csv",
      model_arch: "SimpleMLP",
    },
    "FederationJob",
  );
  return {
    job,
    round: o.round ?? 1,
    model,
    global: o.global ?? new Network(model, kernels(), new SeededRandom(1)).weights(),
    plan: { epochs: 1, batchSize: 32, learningRate: 0.05, momentum: 0 },
  };
}

/** A seeded simulated site on the bundled data, in its own workspace; its rounds run in `isolated` when given. */
export function startRoundAgent(
  workspace: string,
  isolated?: RoundRuntime,
  id = "site-a",
): Promise<LocalAgent> {
  return LocalAgent.start({
    id,
    workspace,
    dataRoot: ROUND_DATA_ROOT,
    provider: new SimulatedProvider(),
    policy: simulationTrustPolicy(),
    accountant: "rdp",
    seed: 5,
    databaseUrl: "",
    isolated,
  });
}

/** A site's ledger rows and audit chain, read from its workspace after the agent closed. */
export async function siteRecords(workspace: string) {
  const db = await openDatabase({ workspace });
  try {
    const ledger = await BudgetLedger.open(db);
    const [key] = await ledger.datasets();
    const jobs = key ? await ledger.jobDetails(key) : [];
    const chain = [];
    for await (const e of readChain(db)) chain.push(e);
    return { jobs, chain };
  } finally {
    await db.close();
  }
}
