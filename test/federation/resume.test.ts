// A coordinator that dies mid-round and resumes from its JobStore: in process, with real
// executors and their persistent ledgers (one per site), a stateful server strategy (FedAdam)
// and the store on PGlite. The "death" is the coordinator's event listener throwing after
// recording a report of round 3: runFederation stops there, as a SIGKILL would stop it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Executor } from "../../src/agent/executor.js";
import { AgentService } from "../../src/agent/agent-service.js";
import type { RoundRecord } from "../../src/coordinator/coordinator.js";
import { JobStore } from "../../src/coordinator/job-store.js";
import { resumeFederation } from "../../src/coordinator/resume.js";
import {
  applyStandardizer,
  fitStandardizer,
  iidPartition,
  loadDataset,
  partitionDataset,
  type Dataset,
} from "../../src/data/index.js";
import type { AgentHandle } from "../../src/federation/agent-handle.js";
import type { TaskOutcome } from "../../src/federation/task.js";
import { Network } from "../../src/model/network.js";
import { buildModelSpec } from "../../src/model/registry.js";
import { weightsHash } from "../../src/model/safetensors.js";
import { createAccountant } from "../../src/privacy/accountant/index.js";
import { BudgetLedger } from "../../src/privacy/budget-ledger.js";
import { SeededRandom } from "../../src/random.js";
import type { AttestationReport } from "../../src/schemas/attestation.js";
import { FederationJob } from "../../src/schemas/federation.js";
import { openDatabase, type Database } from "../../src/storage/database.js";
import { schemaScoped } from "../../src/storage/schema-scope.js";
import { createStrategy } from "../../src/strategies/factory.js";
import { TypeScriptKernels } from "../../src/tensor/ts-kernels.js";
import { evaluate } from "../../src/training/trainer.js";

const DATA = new URL("../../data/", import.meta.url).pathname;
const k = new TypeScriptKernels();
const SITES = ["site-a", "site-b", "site-c"];
const TRUSTED: AttestationReport = {
  node_id: "test",
  hardware_type: "SIMULATED",
  enclave_signature: "test",
  measurement_hash: "00",
  status: "TRUSTED",
};

const job = FederationJob.parse({
  job_id: "a7c3e1f2-4b5d-4e6f-8a9b-0c1d2e3f4a5b",
  clients: SITES,
  min_clients: 2,
  rounds: 5,
  strategy: "FED_AVG",
  privacy: { mechanism: "DP_SGD", noise_multiplier: 3, max_grad_norm: 1, target_epsilon: 4, delta: 1e-5 },
  dataset_id: "breast-cancer-wisconsin.csv",
  model_arch: "SimpleMLP",
});

class Killed extends Error {}

describe("a coordinator killed mid-round resumes from its last checkpoint", () => {
  let db: Database;
  let ledgers: BudgetLedger[];
  let shards: Dataset[];
  let test: Dataset;
  beforeAll(async () => {
    db = await openDatabase({ workspace: "", url: "", memory: true });
    ledgers = await Promise.all(SITES.map((_, i) => schemaScoped(db, `site_${i}`).then(BudgetLedger.open)));
    const { dataset } = await loadDataset(DATA, "breast-cancer-wisconsin.csv");
    const st = fitStandardizer(dataset);
    const all = applyStandardizer(dataset, st);
    shards = partitionDataset(all, iidPartition(all.rows, SITES.length, new SeededRandom(1)));
    test = all;
  });
  afterAll(() => db.close());

  /** The sites, as real executors on their own ledgers; every finished task's steps are counted. */
  function sites(seed: string, taken: number[], globals: Map<number, string>): AgentHandle[] {
    return SITES.map((id, i) => {
      const rng = (l: string) => SeededRandom.derive(seed, `${id}/${l}`);
      const executor = new Executor({
        service: new AgentService(id),
        attest: async () => TRUSTED,
        loadDataset: async () => shards[i],
        ledger: ledgers[i],
        accountantFromHistory: (h) => createAccountant("rdp", h),
        kernels: k,
        noise: rng("noise"),
        sampling: rng("sampling"),
        init: rng("init"),
      });
      return {
        id,
        evidence: () => Promise.reject(new Error("not used: admit is stubbed")),
        probe: (t) => executor.probe(t),
        run: async (t) => {
          if (!globals.has(t.round)) globals.set(t.round, weightsHash(t.global));
          const out: TaskOutcome = await executor.run(t);
          taken[i] += out.metrics.steps ?? 0;
          return out;
        },
        close: async () => {},
      };
    });
  }

  const model = () =>
    buildModelSpec("SimpleMLP", { input_dim: test.numFeatures, num_classes: 2, hidden: [8] });

  function options(seed: string, taken: number[], globals: Map<number, string>) {
    const spec = model();
    const evalNet = new Network(spec, k, new SeededRandom(0));
    return {
      job,
      model: spec,
      plan: { epochs: 1, batchSize: 16, learningRate: 0.05, momentum: 0.9 },
      agents: sites(seed, taken, globals),
      initial: new Network(spec, k, SeededRandom.derive(seed, "init")).weights(),
      strategy: createStrategy({ name: "FED_ADAM", serverLr: 0.05 }),
      gate: { admit: async () => TRUSTED },
      ordered: true,
      evaluate: (w: Parameters<Network["loadWeights"]>[0]) => {
        evalNet.loadWeights(w);
        return evaluate(evalNet, test);
      },
    };
  }

  /** A site's epsilon from its own ledger alone (the authority), independent of any report. */
  async function ledgerEpsilon(i: number): Promise<{ epsilon: number; steps: number }> {
    let steps = 0;
    let epsilon = 0;
    for (const key of await ledgers[i].datasets()) {
      const state = await ledgers[i].state(key);
      steps += state.history.reduce((n, s) => n + s.steps, 0);
      epsilon = createAccountant("rdp", state.history).getEpsilon(state.delta ?? 1e-5);
    }
    return { epsilon, steps };
  }

  it("every round appears once, the model goes on from the checkpoint, no site's epsilon is lost or charged twice", async () => {
    const store = await JobStore.open(db);
    await store.submit(job);
    const first = await store.claim();
    expect(first?.resume).toBeUndefined();

    // Run 1: dies once a site has reported in round 3 (the others' tasks still finish and are charged).
    const taken = SITES.map(() => 0);
    const globals1 = new Map<number, string>();
    const o1 = options("run-1", taken, globals1);
    const inflight: Promise<unknown>[] = [];
    const agents1 = o1.agents.map((a) => ({
      ...a,
      run: (t: Parameters<AgentHandle["run"]>[0]) => {
        const p = a.run(t);
        inflight.push(p.catch(() => undefined));
        return p;
      },
    }));
    const before: Record<string, number> = {};
    await expect(
      resumeFederation({
        ...o1,
        agents: agents1,
        onEvent: async (e) => {
          await store.record(e);
          if (e.type === "client_reported") before[e.client_id] = e.epsilon;
          if (e.type === "client_reported" && e.round === 3) throw new Killed("coordinator killed");
        },
      }),
    ).rejects.toBeInstanceOf(Killed);
    await Promise.all(inflight);
    const checkpointModel = (await store.get(job.job_id)).model_sha256;
    expect((await store.get(job.job_id)).rounds_completed).toBe(2);

    // Restart: a fresh strategy and fresh agents; the store hands the job back with its checkpoint.
    const claimed = await store.claim();
    expect(claimed?.job).toEqual(job);
    const cp = claimed!.resume!;
    expect(cp.rounds.map((r) => r.round)).toEqual([1, 2]);
    expect(weightsHash(cp.global)).toBe(checkpointModel);
    expect(cp.strategy?.round).toBe(2);
    const globals2 = new Map<number, string>();
    const o2 = options("run-2", taken, globals2);
    const result = await resumeFederation({ ...o2, onEvent: (e) => store.record(e) }, cp);

    expect(result.status).toBe("completed");
    expect(result.rounds.map((r: RoundRecord) => r.round)).toEqual([1, 2, 3, 4, 5]);
    expect(result.rounds.slice(0, 2)).toEqual(cp.rounds);
    // Round 3 starts from the checkpoint (not from run 2's fresh initial model).
    expect(globals2.get(3)).toBe(checkpointModel);
    expect(globals2.has(1) || globals2.has(2)).toBe(false);
    expect(weightsHash(o2.initial)).not.toBe(checkpointModel);
    // The store holds each round once and the last model.
    const rows = await db.query<{ round: number; n: number }>(
      "select round, count(*)::int as n from coordinator_rounds where job_id = $1 group by round order by round",
      [job.job_id],
    );
    expect(rows.map((r) => [Number(r.round), Number(r.n)])).toEqual([1, 2, 3, 4, 5].map((r) => [r, 1]));
    expect(await store.get(job.job_id)).toMatchObject({
      status: "completed",
      rounds_completed: 5,
      model_sha256: weightsHash(result.global),
    });
    // Each site: the ledger holds exactly the steps of every task it finished (the interrupted
    // round's included, once), and the reported epsilon is the ledger's, never below what it
    // had reported before the restart.
    for (const [i, id] of SITES.entries()) {
      const own = await ledgerEpsilon(i);
      expect(own.steps, id).toBe(taken[i]);
      const reported = result.clients.find((c) => c.id === id)!.epsilon;
      expect(reported, id).toBeCloseTo(own.epsilon, 9);
      expect(reported, id).toBeGreaterThan(before[id] ?? 0);
    }
  });
});
