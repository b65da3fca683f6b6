import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyStandardizer,
  fitStandardizer,
  iidPartition,
  loadDataset,
  partitionDataset,
  stratifiedSplit,
  subsetDataset,
  type Dataset,
} from "../data/index.js";
import { ValidationError } from "../errors.js";
import { Network } from "../model/network.js";
import { buildModelSpec } from "../model/registry.js";
import { computeEpsilon, createAccountant } from "../privacy/accountant/index.js";
import { BudgetLedger } from "../privacy/budget-ledger.js";
import { SeededRandom } from "../random.js";
import type { AttestationReport } from "../schemas/attestation.js";
import { parseContract } from "../schemas/contract.js";
import { FederationJob, type FederationJobInput } from "../schemas/federation.js";
import { PrivacyConfig } from "../schemas/privacy.js";
import { openDatabase, type Database } from "../storage/database.js";
import type { TensorMap } from "../tensor/tensor.js";
import { TypeScriptKernels } from "../tensor/ts-kernels.js";
import { SgdOptimizer } from "../training/optimizer.js";
import { evaluate, train } from "../training/trainer.js";
import { AgentService } from "../agent/agent-service.js";
import {
  assertClientLevelJob,
  calibrateClientNoise,
  clientLevelBudgetKey,
  ClientLevelDp,
  clientLevelEpsilon,
  EMPTY_ROUND_CLIENT_ID,
} from "./client-level-dp.js";
import type { AgentHandle } from "../federation/agent-handle.js";
import { runFederation, type JobResult } from "./coordinator.js";
import { Executor } from "../agent/executor.js";
import { createStrategy } from "../strategies/factory.js";
import type { TaskOutcome } from "../federation/task.js";
import { cli } from "../../test/support/cli.js";

const DATA = fileURLToPath(new URL("../../data/", import.meta.url));
const DELTA = 1e-5;
const k = new TypeScriptKernels();

/**
 * Independent reference for q = 1 (every client every round): T rounds of the Gaussian mechanism
 * have RDP T·α/(2z²) (Mironov 2017, Prop. 7), converted as in Balle et al. 2020 Thm 21 over
 * Opacus's default orders 1.1..10.9 and 12..63.
 */
function gaussianEpsilon(z: number, rounds: number, delta: number): number {
  const orders = [
    ...Array.from({ length: 99 }, (_, i) => 1.1 + i * 0.1),
    ...Array.from({ length: 52 }, (_, i) => 12 + i),
  ];
  let best = Infinity;
  for (const a of orders) {
    const eps =
      (rounds * a) / (2 * z * z) - (Math.log(delta) + Math.log(a)) / (a - 1) + Math.log((a - 1) / a);
    best = Math.min(best, eps);
  }
  return best;
}

const TRUSTED: AttestationReport = {
  node_id: "test",
  hardware_type: "SIMULATED",
  enclave_signature: "test",
  measurement_hash: "00",
  status: "TRUSTED",
};

interface Federation {
  train: Dataset;
  test: Dataset;
  shards: Dataset[];
}

/** The bundled breast-cancer data: 80/20 stratified split, standardised, IID shards. */
async function breastCancer(clients: number, seed: string): Promise<Federation> {
  const { dataset } = await loadDataset(DATA, "breast-cancer-wisconsin.csv");
  const rng = (l: string) => SeededRandom.derive(seed, l);
  const split = stratifiedSplit(dataset.labels, dataset.numClasses, 0.2, rng("split"));
  const trainRaw = subsetDataset(dataset, split.train);
  const st = fitStandardizer(trainRaw);
  const trainSet = applyStandardizer(trainRaw, st);
  const test = applyStandardizer(subsetDataset(dataset, split.test), st);
  const shards = partitionDataset(trainSet, iidPartition(trainSet.rows, clients, rng("partition")));
  return { train: trainSet, test, shards };
}

interface RunSetup {
  fed: Federation;
  ledger: BudgetLedger;
  seed: string;
  datasetId: string;
  rounds: number;
  z: number;
  clipNorm: number;
  q?: number;
  targetEpsilon?: number;
  epochs?: number;
  hidden?: number[];
  /** The agents' opt-in to un-noised updates (default true). */
  accept?: boolean;
  onOutcome?: (round: number, out: TaskOutcome, global: TensorMap) => void;
  jobId?: string;
  /** The sites' id prefix (default: the dataset id's stem), so tests do not share sites' budgets. */
  population?: string;
}

/** The job's site ids: `<population>-site-<i>`. */
function siteIds(s: RunSetup): string[] {
  const prefix = s.population ?? s.datasetId.replace(/\.csv$/, "");
  return s.fed.shards.map((_, i) => `${prefix}-site-${i}`);
}

function jobInput(s: RunSetup): FederationJobInput {
  return {
    job_id: s.jobId ?? "3f1c2b9e-8a4d-4c1e-9b7a-2d5e6f708192",
    clients: siteIds(s),
    min_clients: 1,
    rounds: s.rounds,
    strategy: "FED_AVG",
    privacy: {
      mechanism: "DP_FEDAVG",
      noise_multiplier: s.z,
      max_grad_norm: s.clipNorm,
      target_epsilon: s.targetEpsilon ?? 5,
      client_sampling_rate: s.q ?? 1,
    },
    dataset_id: s.datasetId,
    model_arch: "SimpleMLP",
  };
}

/** Agents built on the real Executor (Attest stubbed as trusted, data from memory), one shared ledger. */
function agentsFor(s: RunSetup): AgentHandle[] {
  const ids = siteIds(s);
  return s.fed.shards.map((shard, i) => {
    const id = ids[i];
    const rng = (l: string) => SeededRandom.derive(s.seed, `${id}/${l}`);
    const executor = new Executor({
      service: new AgentService(id),
      attest: async () => TRUSTED,
      loadDataset: async () => shard,
      ledger: s.ledger,
      accountantFromHistory: (h) => createAccountant("rdp", h),
      kernels: k,
      noise: rng("noise"),
      sampling: rng("sampling"),
      init: rng("init"),
      acceptClientLevelDp: s.accept ?? true,
    });
    return {
      id,
      evidence: () => Promise.reject(new Error("not used: admit is stubbed")),
      probe: (t) => executor.probe(t),
      run: async (t) => {
        const out = await executor.run(t);
        s.onOutcome?.(t.round, out, t.global);
        return out;
      },
      close: async () => {},
    };
  });
}

async function runClientLevel(
  s: RunSetup,
): Promise<{ result: JobResult; cld: ClientLevelDp; initial: TensorMap; job: FederationJob }> {
  const job = parseContract(FederationJob, jobInput(s), "FederationJob");
  const model = buildModelSpec("SimpleMLP", {
    input_dim: s.fed.train.numFeatures,
    num_classes: s.fed.train.numClasses,
    hidden: s.hidden ?? [32],
  });
  const cld = await ClientLevelDp.open({
    job,
    ledger: s.ledger,
    noise: SeededRandom.derive(s.seed, "server-noise"),
    sampling: SeededRandom.derive(s.seed, "client-sampling"),
    allowInsecureRandom: true,
    kernels: k,
  });
  const initial = new Network(model, k, SeededRandom.derive(s.seed, "global-init")).weights();
  const evalNet = new Network(model, k, new SeededRandom(0));
  const result = await runFederation({
    job,
    model,
    plan: { epochs: s.epochs ?? 1, batchSize: 16, learningRate: 0.05, momentum: 0.9 },
    agents: agentsFor(s),
    initial,
    strategy: cld,
    gate: { admit: async () => TRUSTED },
    ordered: true,
    evaluate: (w) => {
      evalNet.loadWeights(w);
      return evaluate(evalNet, s.fed.test);
    },
  });
  return { result, cld, initial, job };
}

describe("PrivacyConfig with mechanism DP_FEDAVG", () => {
  const base = { mechanism: "DP_FEDAVG", noise_multiplier: 1.2, max_grad_norm: 0.5, target_epsilon: 3 };
  const issues = (input: unknown) => {
    try {
      parseContract(PrivacyConfig, input, "PrivacyConfig");
    } catch (e) {
      expect(e).toBeInstanceOf(ValidationError);
      return (e as ValidationError).issues;
    }
    throw new Error("expected a validation error");
  };

  it("accepts DP_FEDAVG with an optional client sampling rate in (0, 1]", () => {
    expect(parseContract(PrivacyConfig, base, "p")).toEqual({ ...base, delta: DELTA });
    expect(parseContract(PrivacyConfig, { ...base, client_sampling_rate: 1 }, "p").client_sampling_rate).toBe(
      1,
    );
    expect(issues({ ...base, client_sampling_rate: 0 })[0]).toEqual({
      path: "client_sampling_rate",
      rule: "must be > 0",
    });
    expect(issues({ ...base, client_sampling_rate: 1.5 })[0].rule).toBe("must be <= 1");
  });

  it("refuses a client sampling rate DP-SGD would silently ignore", () => {
    expect(issues({ ...base, mechanism: "DP_SGD", client_sampling_rate: 0.5 })).toEqual([
      { path: "client_sampling_rate", rule: 'is allowed only with mechanism "DP_FEDAVG"' },
    ]);
  });

  it("refuses z = 0 (no noise) and the ceiling breach as for DP-SGD", () => {
    expect(issues({ ...base, noise_multiplier: 0 })[0]).toEqual({
      path: "noise_multiplier",
      rule: "must be > 0",
    });
    expect(issues({ ...base, target_epsilon: 5.5 })[0].path).toBe("target_epsilon");
  });

  it("refuses SCAFFOLD with DP_FEDAVG, naming the strategy field", () => {
    const fed = { shards: [{}, {}] } as unknown as Federation;
    const job = parseContract(
      FederationJob,
      {
        ...jobInput({ fed, datasetId: "d", rounds: 1, z: 1, clipNorm: 1 } as RunSetup),
        strategy: "SCAFFOLD",
      },
      "FederationJob",
    );
    expect(() => assertClientLevelJob(job)).toThrow(/strategy: must be FED_AVG or FED_PROX/);
  });
});

describe("client-level noise calibration", () => {
  it("q = 1: the calibrated z meets the target within Opacus's tolerance, by the closed-form Gaussian RDP", () => {
    for (const [target, rounds] of [
      [3, 15],
      [1, 40],
      [5, 3],
    ]) {
      const z = calibrateClientNoise({ targetEpsilon: target, rounds, samplingRate: 1, delta: DELTA });
      const eps = gaussianEpsilon(z, rounds, DELTA);
      expect(eps).toBeLessThanOrEqual(target + 1e-9);
      expect(eps).toBeGreaterThan(target - 0.01);
    }
  });

  it("q < 1: calibrated against the sampled-Gaussian accountant with one step per round", () => {
    const z = calibrateClientNoise({ targetEpsilon: 2, rounds: 50, samplingRate: 0.3, delta: DELTA });
    const eps = computeEpsilon({
      accountant: "rdp",
      noiseMultiplier: z,
      sampleRate: 0.3,
      steps: 50,
      delta: DELTA,
    });
    expect(eps.epsilon).toBeLessThanOrEqual(2);
    expect(eps.epsilon).toBeGreaterThan(1.99);
    // Amplification by sampling: less noise than with every client in every round.
    expect(z).toBeLessThan(
      calibrateClientNoise({ targetEpsilon: 2, rounds: 50, samplingRate: 1, delta: DELTA }),
    );
  });

  it("clientLevelEpsilon answers the planning question with one step per round", () => {
    expect(clientLevelEpsilon({ noiseMultiplier: 3, rounds: 4, samplingRate: 1, delta: DELTA })).toBeCloseTo(
      gaussianEpsilon(3, 4, DELTA),
      9,
    );
    // Sampling fewer clients per round spends less.
    expect(
      clientLevelEpsilon({ noiseMultiplier: 3, rounds: 4, samplingRate: 0.2, delta: DELTA }),
    ).toBeLessThan(gaussianEpsilon(3, 4, DELTA) / 2);
  });

  it("refuses q = 0 instead of searching forever", () => {
    expect(() =>
      calibrateClientNoise({ targetEpsilon: 1, rounds: 5, samplingRate: 0, delta: DELTA }),
    ).toThrow(/client_sampling_rate: must be in \(0, 1\]/);
  });
});

describe("DP_FEDAVG federations (coordinator + real executors)", () => {
  let db: Database;
  let ledger: BudgetLedger;
  let small: Federation;
  beforeAll(async () => {
    db = await openDatabase({ workspace: mkdtempSync(join(tmpdir(), "enclave-cldp-")), url: "" });
    ledger = await BudgetLedger.open(db);
    small = await breastCancer(6, "small");
  });
  afterAll(() => db.close());

  it("charges one sampled-Gaussian step per round at (z, q): each round's epsilon equals computeEpsilon", async () => {
    const z = 1.7;
    const q = 0.5;
    const outcomes: TaskOutcome[] = [];
    const { result, cld } = await runClientLevel({
      fed: small,
      ledger,
      seed: "accounting",
      datasetId: "accounting.csv",
      rounds: 6,
      z,
      clipNorm: 1,
      q,
      onOutcome: (_, out) => outcomes.push(out),
    });
    expect(result.status).toBe("completed");
    expect(result.rounds).toHaveLength(6);
    result.rounds.forEach((r, i) => {
      const expected = computeEpsilon({
        accountant: "rdp",
        noiseMultiplier: z,
        sampleRate: q,
        steps: i + 1,
        delta: DELTA,
      });
      expect(r.privacy!.epsilon).toBeCloseTo(expected.epsilon, 12);
      expect(r.privacy).toMatchObject({
        mechanism: "DP_FEDAVG",
        level: "client",
        noise_multiplier: z,
        sampling_rate: q,
      });
      // Round records carry the job's client-level epsilon for every client that took part.
      for (const id of r.clients) expect(r.epsilon[id]).toBe(r.privacy!.epsilon);
      expect(r.clients.length).toBeLessThanOrEqual(r.privacy!.sampled);
    });
    // Poisson sampling at q = 0.5 over 6 sites and 6 rounds: not everyone every round.
    const sampled = result.rounds.map((r) => r.privacy!.sampled);
    expect(Math.min(...sampled)).toBeLessThan(6);
    const final = computeEpsilon({
      accountant: "rdp",
      noiseMultiplier: z,
      sampleRate: q,
      steps: 6,
      delta: DELTA,
    }).epsilon;
    expect(result.privacy).toMatchObject({
      epsilon: final,
      rounds_accounted: 6,
      ledger_keys: siteIds({ fed: small, datasetId: "accounting.csv" } as RunSetup).map(clientLevelBudgetKey),
    });
    for (const c of result.clients) expect(c.epsilon).toBe(final);
    expect(cld.spentEpsilon()).toBe(final);
    // The coordinator's ledger holds the 6 steps; the agents trained without per-example DP:
    // no local epsilon left the airlock and nothing was written to the dataset's own ledger.
    for (const key of result.privacy!.ledger_keys)
      expect(await ledger.jobs(key)).toEqual([
        { jobId: "3f1c2b9e-8a4d-4c1e-9b7a-2d5e6f708192", steps: 6, reserved: false },
      ]);
    expect(await ledger.history("accounting.csv")).toEqual([]);
    expect(outcomes.length).toBeGreaterThan(0);
    for (const o of outcomes) {
      expect(o.metrics.epsilon).toBeUndefined();
      expect(o.metrics.steps).toBeGreaterThan(0);
    }
  });

  it("q = 1 matches the closed-form Gaussian composition", async () => {
    const { result } = await runClientLevel({
      fed: small,
      ledger,
      seed: "closed-form",
      datasetId: "closed-form.csv",
      rounds: 4,
      z: 3,
      clipNorm: 1,
    });
    expect(result.rounds.map((r) => r.privacy!.sampled)).toEqual([6, 6, 6, 6]);
    expect(result.privacy!.epsilon).toBeCloseTo(gaussianEpsilon(3, 4, DELTA), 9);
  });

  it("never runs the round that would pass the target; the spend persists and stops the next job", async () => {
    const z = 4;
    const target = 2;
    // Brute force with the independent closed form: the last round count that fits.
    let fits = 0;
    while (gaussianEpsilon(z, fits + 1, DELTA) <= target) fits++;
    expect(fits).toBeGreaterThan(0);
    expect(fits).toBeLessThan(20);
    const { result } = await runClientLevel({
      fed: small,
      ledger,
      seed: "budget",
      datasetId: "budget.csv",
      rounds: 20,
      z,
      clipNorm: 1,
      targetEpsilon: target,
    });
    expect(result.status).toBe("privacy_budget_exhausted");
    expect(result.rounds).toHaveLength(fits);
    expect(result.reason).toMatch(
      new RegExp(`^round ${fits + 1}: the next round would reach client-level epsilon`),
    );
    expect(result.privacy!.epsilon).toBeLessThanOrEqual(target);
    expect(result.privacy!.epsilon).toBeCloseTo(gaussianEpsilon(z, fits, DELTA), 9);
    for (const key of result.privacy!.ledger_keys)
      expect(await ledger.jobs(key)).toEqual([expect.objectContaining({ steps: fits, reserved: false })]);

    // A new job on the same federated dataset, same ledger (a restart): nothing left to spend.
    const again = await runClientLevel({
      fed: small,
      ledger,
      seed: "budget-2",
      datasetId: "budget.csv",
      rounds: 5,
      z,
      clipNorm: 1,
      targetEpsilon: target,
      jobId: "6b0f9a51-2c43-4d8e-a1f7-0c9d8e7b6a54",
    });
    expect(again.result.status).toBe("privacy_budget_exhausted");
    expect(again.result.rounds).toEqual([]);
    expect(again.result.global).toBe(again.initial);
    expect(again.result.reason).toMatch(/^round 1: /);

    // The same sites under another dataset_id: the budget is theirs, not the id's.
    const renamed = await runClientLevel({
      fed: small,
      ledger,
      seed: "budget-3",
      datasetId: "renamed.csv",
      population: "budget",
      rounds: 5,
      z,
      clipNorm: 1,
      targetEpsilon: target,
      jobId: "0d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f60",
    });
    expect(renamed.result.status).toBe("privacy_budget_exhausted");
    expect(renamed.result.rounds).toEqual([]);
    // One site of that population joined by a new one: the old site's spend still stops the job.
    const [oldSite] = siteIds({ fed: small, datasetId: "budget.csv" } as RunSetup);
    const mixed = await ClientLevelDp.open({
      job: parseContract(
        FederationJob,
        {
          ...jobInput({
            fed: small,
            datasetId: "other.csv",
            rounds: 5,
            z,
            clipNorm: 1,
            targetEpsilon: target,
          } as RunSetup),
          clients: [oldSite, "newcomer-site"],
          job_id: "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b",
        },
        "FederationJob",
      ),
      ledger,
      sampling: new SeededRandom(1),
      allowInsecureRandom: true,
    });
    expect(mixed.refusal()).toMatch(/^the next round would reach client-level epsilon/);
  });

  it("inherits a budget kept per dataset_id by earlier builds into each site's key, once", async () => {
    const datasetId = "legacy.csv";
    const z = 2;
    // An earlier build charged 7 rounds at q = 1 to the job's dataset_id.
    const legacy = "dp-fedavg:" + datasetId;
    const row = await ledger.reserve(
      legacy,
      "old-job",
      { noiseMultiplier: z, sampleRate: 1, delta: DELTA },
      () => 7,
    );
    await ledger.settle(row.id, 7);
    const setup = { fed: small, ledger, seed: "legacy", datasetId, rounds: 1, z, clipNorm: 1 };
    const opened = async () =>
      ClientLevelDp.open({
        job: parseContract(FederationJob, jobInput(setup), "FederationJob"),
        ledger,
        sampling: new SeededRandom(1),
        allowInsecureRandom: true,
      });
    const cld = await opened();
    expect(cld.spentEpsilon()).toBeCloseTo(gaussianEpsilon(z, 7, DELTA), 9);
    await opened(); // a second open copies nothing more
    for (const key of cld.ledgerKeys) {
      expect(await ledger.jobs(key)).toEqual([{ jobId: "old-job", steps: 7, reserved: false }]);
      expect((await ledger.auditLog(key)).map((a) => a.action)).toEqual(["migrate"]);
    }
  });

  it("adds noise of std z·C/(qN) to the mean of the clients' updates (wiring, measured on the model)", async () => {
    // C far above every update norm, so nothing is clipped: the aggregate is plain FedAvg with
    // uniform weights plus N(0, (zC)²)/(qN) per coordinate.
    const z = 1.5;
    const C = 50;
    const deltas: TensorMap[] = [];
    let x: TensorMap | undefined;
    const { result } = await runClientLevel({
      fed: small,
      ledger,
      seed: "noise",
      datasetId: "noise.csv",
      rounds: 1,
      z,
      clipNorm: C,
      onOutcome: (_, out, global) => {
        x = global;
        deltas.push(
          new Map(
            [...out.weights].map(([n, t]) => [
              n,
              { shape: t.shape, data: t.data.map((v, i) => v - global.get(n)!.data[i]) },
            ]),
          ),
        );
      },
    });
    expect(deltas).toHaveLength(6);
    const residual: number[] = [];
    for (const [name, t] of x!) {
      for (let i = 0; i < t.data.length; i++) {
        let sum = 0;
        for (const d of deltas) sum += d.get(name)!.data[i];
        residual.push(result.global.get(name)!.data[i] - (t.data[i] + sum / 6));
      }
    }
    for (const d of deltas) {
      let sq = 0;
      for (const t of d.values()) for (const v of t.data) sq += v * v;
      expect(Math.sqrt(sq)).toBeLessThan(C);
    }
    const n = residual.length;
    const mean = residual.reduce((a, b) => a + b, 0) / n;
    const std = Math.sqrt(residual.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
    const expected = (z * C) / 6;
    // ~1000 coordinates: the sample std is within a few percent of the truth.
    expect(Math.abs(std / expected - 1)).toBeLessThan(0.15);
    expect(Math.abs(mean)).toBeLessThan((5 * expected) / Math.sqrt(n));
  });

  it("an empty Poisson sample still releases (pure noise) and is charged, so the accounting holds", async () => {
    const fed = await breastCancer(3, "empty");
    const { result } = await runClientLevel({
      fed,
      ledger,
      seed: "empty",
      datasetId: "empty.csv",
      rounds: 5,
      z: 2,
      clipNorm: 1,
      q: 0.1,
    });
    expect(result.status).toBe("completed");
    expect(result.rounds).toHaveLength(5);
    const empty = result.rounds.filter((r) => r.privacy!.sampled === 0);
    expect(empty.length).toBeGreaterThan(0);
    for (const r of empty) expect(r.clients).toEqual([]);
    expect(result.privacy!.epsilon).toBeCloseTo(
      computeEpsilon({ accountant: "rdp", noiseMultiplier: 2, sampleRate: 0.1, steps: 5, delta: DELTA })
        .epsilon,
      12,
    );
    expect(EMPTY_ROUND_CLIENT_ID).not.toMatch(/^site-/);
  });

  it("agents refuse DP_FEDAVG tasks unless their owner opted in (their updates would leave un-noised)", async () => {
    let trained = 0;
    const { result } = await runClientLevel({
      fed: small,
      ledger,
      seed: "refuse",
      datasetId: "refuse.csv",
      rounds: 3,
      z: 2,
      clipNorm: 1,
      accept: false,
      onOutcome: () => trained++,
    });
    expect(trained).toBe(0);
    expect(result.status).toBe("insufficient_clients");
    expect(result.rounds).toEqual([]);
    for (const c of result.clients) {
      expect(c.state).toBe("failed");
      expect(c.reason).toMatch(/^CLIENT_LEVEL_DP_NOT_ACCEPTED: /);
    }
  });

  it("refuses a mismatched mechanism and strategy instead of running unprotected", async () => {
    const job = parseContract(
      FederationJob,
      jobInput({ fed: small, datasetId: "m.csv", rounds: 1, z: 1, clipNorm: 1 } as RunSetup),
      "FederationJob",
    );
    const cld = await ClientLevelDp.open({
      job,
      ledger,
      noise: new SeededRandom(1),
      sampling: new SeededRandom(2),
      allowInsecureRandom: true,
    });
    const base = {
      job,
      model: buildModelSpec("SimpleMLP", { input_dim: 30, num_classes: 2, hidden: [4] }),
      plan: { epochs: 1, batchSize: 16, learningRate: 0.05, momentum: 0 },
      agents: [],
      initial: new Map(),
      gate: { admit: async () => TRUSTED },
      evaluate: () => ({ accuracy: 0, loss: 0 }),
    };
    await expect(
      runFederation({ ...base, strategy: createStrategy({ name: "FED_AVG" }) }),
    ).rejects.toMatchObject({
      code: "PRIVACY_MECHANISM_MISMATCH",
    });
    const dpSgdJob = parseContract(
      FederationJob,
      {
        ...jobInput({ fed: small, datasetId: "m.csv", rounds: 1, z: 1, clipNorm: 1 } as RunSetup),
        privacy: { mechanism: "DP_SGD", noise_multiplier: 1, max_grad_norm: 1, target_epsilon: 1 },
      },
      "FederationJob",
    );
    await expect(runFederation({ ...base, job: dpSgdJob, strategy: cld })).rejects.toMatchObject({
      code: "PRIVACY_MECHANISM_MISMATCH",
    });
    // And seeded randomness needs the explicit simulation switch.
    await expect(ClientLevelDp.open({ job, ledger, sampling: new SeededRandom(3) })).rejects.toMatchObject({
      code: "INSECURE_RANDOM",
    });
  });

  it("breast cancer, 32 sites, q = 0.5, 30 rounds at client-level epsilon 3: within a few points of non-private training", async () => {
    const fed = await breastCancer(32, "e2e");
    const rounds = 30;
    const q = 0.5;
    const z = calibrateClientNoise({ targetEpsilon: 3, rounds, samplingRate: q, delta: DELTA });
    const { result } = await runClientLevel({
      fed,
      ledger,
      seed: "e2e",
      datasetId: "e2e.csv",
      rounds,
      z,
      clipNorm: 0.15,
      q,
      epochs: 3,
      targetEpsilon: 3,
    });
    expect(result.status).toBe("completed");
    expect(result.privacy!.epsilon).toBeLessThanOrEqual(3);
    expect(result.privacy!.epsilon).toBeGreaterThan(2.99);
    // The centralised, non-private reference: same model, data and optimiser, as many passes.
    const model = buildModelSpec("SimpleMLP", { input_dim: 30, num_classes: 2, hidden: [32] });
    const net = new Network(model, k, SeededRandom.derive("e2e", "global-init"));
    await train(net, k, fed.train, {
      epochs: rounds * 3,
      batchSize: 16,
      optimizer: new SgdOptimizer(k, 0.05, 0.9),
      sampling: SeededRandom.derive("e2e", "baseline"),
    });
    const baseline = evaluate(net, fed.test).accuracy;
    const accuracy = result.rounds.at(-1)!.accuracy;
    expect(baseline).toBeGreaterThan(0.94);
    expect(accuracy).toBeGreaterThan(0.92);
    expect(baseline - accuracy).toBeLessThan(0.05);
  });
});

describe("enclave simulate --mechanism dp-fedavg", () => {
  it("runs seeded end to end and reports the client-level epsilon in --json", async () => {
    const out = mkdtempSync(join(tmpdir(), "enclave-sim-cldp-"));
    const r = await cli(
      "simulate",
      "--mechanism",
      "dp-fedavg",
      "--clients",
      "3",
      "--rounds",
      "2",
      "--noise-multiplier",
      "4",
      "--seed",
      "7",
      "--json",
      "--out",
      out,
    );
    expect(r.code, r.err).toBe(0);
    const s = JSON.parse(r.out);
    const eps = gaussianEpsilon(4, 2, DELTA);
    expect(s.status).toBe("completed");
    expect(s.privacy).toMatchObject({
      mechanism: "DP_FEDAVG",
      level: "client",
      noise_multiplier: 4,
      sampling_rate: 1,
    });
    expect(s.privacy.epsilon).toBeCloseTo(eps, 9);
    expect(s.clients).toHaveLength(3);
    for (const c of s.clients) {
      expect(c.epsilon_level).toBe("client");
      expect(c.epsilon).toBeCloseTo(eps, 9);
    }
    expect(s.rounds.map((x: { privacy: { epsilon: number } }) => x.privacy.epsilon)[1]).toBeCloseTo(eps, 9);
  });

  it("refuses DP-FedAvg-only flags with DP-SGD and a SCAFFOLD DP_FEDAVG job file, naming the field", async () => {
    const a = await cli("simulate", "--client-sampling-rate", "0.5", "--json");
    expect(a.code).toBe(1);
    expect(a.err).toMatch(/--client-sampling-rate\/--server-lr: apply only with --mechanism dp-fedavg/);
    const dir = mkdtempSync(join(tmpdir(), "enclave-sim-job-"));
    const file = join(dir, "job.json");
    const fed = { shards: [{}, {}] } as unknown as Federation;
    writeFileSync(
      file,
      JSON.stringify({
        ...jobInput({ fed, datasetId: "d.csv", rounds: 1, z: 1, clipNorm: 1 } as RunSetup),
        strategy: "SCAFFOLD",
      }),
    );
    const b = await cli("simulate", "--job", file, "--json", "--out", dir);
    expect(b.code).toBe(1);
    expect(b.err).toMatch(/VALIDATION_FAILED.*strategy: must be FED_AVG or FED_PROX/);
  });
});
