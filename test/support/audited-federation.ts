import { randomUUID } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { HeadSigner } from "../../src/audit/entry.js";
import { createProjectCa, issueCertificate } from "../../src/identity/certificates.js";
import { join } from "node:path";
import { LocalAgent, loadTrainingExamples } from "../../src/agent/local-agent.js";
import { simulationTrustPolicy } from "../../src/attestation/policy/simulation.js";
import { InsecureProvider, SimulatedProvider } from "../../src/attestation/providers/software.js";
import { AttestationGate } from "../../src/coordinator/attestation-gate.js";
import { runFederation, type JobResult } from "../../src/coordinator/coordinator.js";
import type { CoordinatorEventListener } from "../../src/coordinator/events.js";
import { Network } from "../../src/model/network.js";
import { buildModelSpec } from "../../src/model/registry.js";
import { SeededRandom } from "../../src/random.js";
import { parseContract } from "../../src/schemas/contract.js";
import { FederationJob } from "../../src/schemas/federation.js";
import { createStrategy } from "../../src/strategies/factory.js";
import { kernels } from "../../src/tensor/backend.js";
import { evaluate } from "../../src/training/trainer.js";
import { plantNumbers, seedWorkspace, stringCanary, writeDataset } from "../canary/canary.js";

export const MODEL = buildModelSpec("SimpleMLP", { input_dim: 30, num_classes: 2, hidden: [8] });
const PLAN = { epochs: 1, batchSize: 32, learningRate: 0.05, momentum: 0 };

export interface Site {
  id: string;
  workspace: string;
  agent: LocalAgent;
  /** The site's certificate (PEM file) from a project CA; its key signs the site's chain. */
  certPath: string;
}

/**
 * Sites in this process, each with its own workspace (ledger and audit chain on PGlite, the chain
 * signed with the site's key from a project CA's certificate) and a copy
 * of the bundled data with the number canaries planted; `poisoned` sites get a string canary in
 * a label too, so the Data Sentry refuses their data and they are excluded with an error code;
 * `insecure` sites present INSECURE evidence, which the simulation's trust policy refuses.
 */
export async function startSites(
  root: string,
  template: string,
  ids: string[],
  poisoned: string[] = [],
  insecure: string[] = [],
): Promise<{ sites: Site[]; labelCanary: string }> {
  const labelCanary = stringCanary("AUDITLABEL");
  const sites: Site[] = [];
  const ca = await createProjectCa("demo");
  for (const id of ids) {
    const workspace = join(root, id);
    mkdirSync(workspace, { recursive: true });
    const credential = await issueCertificate(ca, { name: id, role: "site" });
    const certPath = join(root, `${id}.cert.pem`);
    writeFileSync(certPath, credential.certPem);
    seedWorkspace(template, workspace);
    writeDataset(join(workspace, "data"), "bc", (rows, col) => {
      plantNumbers(rows, col);
      if (poisoned.includes(id)) rows[21][col("diagnosis")] = labelCanary;
    });
    const agent = await LocalAgent.start({
      id,
      workspace,
      dataRoot: join(workspace, "data"),
      provider: insecure.includes(id) ? new InsecureProvider() : new SimulatedProvider(),
      policy: simulationTrustPolicy(),
      accountant: "rdp",
      seed: 5,
      databaseUrl: "",
      chainSigner: new HeadSigner(credential.keyPem),
    });
    sites.push({ id, workspace, agent, certPath });
  }
  return { sites, labelCanary };
}

export function demoJob(clients: string[], rounds: number, jobId = randomUUID()): FederationJob {
  return parseContract(
    FederationJob,
    {
      job_id: jobId,
      clients,
      min_clients: 1,
      rounds,
      strategy: "FED_AVG",
      privacy: {
        mechanism: "DP_SGD",
        noise_multiplier: 1.5,
        max_grad_norm: 1,
        target_epsilon: 3,
        delta: 1e-5,
      },
      dataset_id: "bc.csv",
      model_arch: "SimpleMLP",
    },
    "FederationJob",
  );
}

/** Run `job` on the sites with the coordinator's real loop, gate and strategy. */
export async function runJob(
  job: FederationJob,
  sites: Site[],
  onEvent: CoordinatorEventListener,
): Promise<JobResult> {
  const test = await loadTrainingExamples(join(sites[0].workspace, "data"), "bc.csv");
  const net = new Network(MODEL, kernels(), new SeededRandom(0));
  return runFederation({
    job,
    model: MODEL,
    plan: PLAN,
    agents: sites.map((s) => s.agent),
    initial: new Network(MODEL, kernels(), new SeededRandom(1)).weights(),
    strategy: createStrategy({ name: "FED_AVG" }),
    gate: new AttestationGate(simulationTrustPolicy()),
    evaluate: (w) => {
      net.loadWeights(w);
      return evaluate(net, test);
    },
    onEvent,
    ordered: true,
  });
}
