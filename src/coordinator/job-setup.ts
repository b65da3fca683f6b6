import { existsSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { BUNDLED_DATASET } from "../data/bundled.js";
import { applyStandardizer, fitStandardizer, loadDataset } from "../data/index.js";
import { EnclaveError } from "../errors.js";
import { defaultPlan } from "../federation/task.js";
import { Network } from "../model/network.js";
import { buildModelSpec } from "../model/registry.js";
import type { AccountantName } from "../privacy/accountant/index.js";
import { BudgetLedger } from "../privacy/budget-ledger.js";
import { CryptoRandom } from "../random.js";
import type { FederationJob } from "../schemas/federation.js";
import { strategyForJob } from "../strategies/factory.js";
import type { Database } from "../storage/database.js";
import type { ModelSpec } from "../schemas/model.js";
import type { TensorMap } from "../tensor/tensor.js";
import { kernels } from "../tensor/backend.js";
import { SgdOptimizer } from "../training/optimizer.js";
import { evaluate, train, type Examples } from "../training/trainer.js";
import { ClientLevelDp } from "./client-level-dp.js";
import type { JobSetup } from "./job-runner.js";

export interface CoordinatorJobSetupOptions {
  /**
   * A labelled dataset file the coordinator holds (its own held-out data, never a site's): it
   * gives the model its input and class counts and scores each round's global model. Without it
   * the model is shaped from the bundled dataset the job names (`data/<dataset_id>` of this
   * package), never scored: each round's accuracy and loss are unknown (NaN; null in JSON), and
   * no baseline is trained.
   */
  evalData?: string;
  /** Hidden layer widths of SimpleMLP (default [32], as `enclave simulate`). */
  hidden?: number[];
  /** The coordinator's database (DP_FEDAVG keeps the job's client-level budget in it). */
  database?: () => Promise<Database>;
  accountant?: AccountantName;
  /**
   * Labelled training data the coordinator may pool (a POC's bundled dataset, a public proxy):
   * each job then also trains the non-private baseline on it, from the job's initial model with
   * the same plan for as many passes as the job's rounds, scored on `evalData`. Without it the
   * baseline is unknown and nothing claims one.
   */
  baselineData?: string;
  /** Told the baseline's score before the job starts (the audit ledger records it). */
  onBaseline?: (job: FederationJob, baseline: Baseline) => Promise<void>;
}

/** A non-private baseline's score, the examples it was trained on and its passes over them. */
export interface Baseline {
  accuracy: number;
  loss: number;
  examples: number;
  epochs: number;
}

type Labelled = Examples & { numClasses: number };

/** A labelled dataset file, standardised by its schema's statistics (or its own). */
async function loadLabelled(file: string): Promise<Labelled> {
  const { dataset, schema } = await loadDataset(dirname(file), basename(file));
  const st =
    schema.format === "csv" && schema.standardization
      ? {
          mean: Float64Array.from(schema.standardization.mean),
          std: Float64Array.from(schema.standardization.std),
        }
      : fitStandardizer(dataset);
  return { ...applyStandardizer(dataset, st), numClasses: dataset.numClasses };
}

/**
 * How the coordinator's job runner sets a job up: the model from the job's `model_arch` and the
 * evaluation data's shape, a fresh global model from the OS CSPRNG, the default local plan, the
 * job's strategy, and for DP_FEDAVG the client-level DP wrapper on the coordinator's ledger.
 */
export function coordinatorJobSetup(
  o: CoordinatorJobSetupOptions,
): (job: FederationJob) => Promise<JobSetup> {
  let test: Labelled | undefined;
  let pooled: Labelled | undefined;
  const k = kernels();
  return async (job) => {
    // Never scored without held-out data: accuracy and loss unknown.
    if (!o.evalData)
      return { ...(await setup(job, await bundledShape(job), false)), evaluate: () => UNKNOWN };
    test ??= await loadLabelled(o.evalData);
    return setup(job, test, true);
  };
  async function setup(job: FederationJob, data: Labelled, scored: boolean): Promise<JobSetup> {
    const model = buildModelSpec(job.model_arch, {
      input_dim: data.numFeatures,
      num_classes: data.numClasses,
      ...(job.model_arch === "SimpleMLP" ? { hidden: o.hidden ?? [32] } : {}),
    });
    const initial = new Network(model, k, new CryptoRandom()).weights();
    const evalNet = new Network(model, k, new CryptoRandom());
    const plan = defaultPlan(job.strategy);
    if (scored && o.baselineData && o.onBaseline)
      await o.onBaseline(
        job,
        await trainBaseline(job, (pooled ??= await loadLabelled(o.baselineData)), data, { model, initial }),
      );
    let close: (() => Promise<void>) | undefined;
    let strategy = strategyForJob(job);
    if (job.privacy.mechanism === "DP_FEDAVG") {
      if (!o.database)
        throw new EnclaveError("CLIENT_LEVEL_DP_UNAVAILABLE", "DP_FEDAVG needs the coordinator's database");
      const db = await o.database();
      close = () => db.close();
      strategy = await ClientLevelDp.open({
        job,
        ledger: await BudgetLedger.open(db),
        accountant: o.accountant,
      });
    }
    return {
      model,
      plan,
      initial,
      strategy,
      evaluate: (weights) => {
        evalNet.loadWeights(weights);
        return evaluate(evalNet, data);
      },
      close,
    };
  }
}

/**
 * The non-private baseline: the job's initial model trained on the pooled data with the job's plan
 * for as many passes as the job's rounds, scored on the evaluation data.
 */
async function trainBaseline(
  job: FederationJob,
  pooled: Labelled,
  data: Labelled,
  start: { model: ModelSpec; initial: TensorMap },
): Promise<Baseline> {
  if (pooled.numFeatures !== data.numFeatures || pooled.numClasses !== data.numClasses)
    throw new EnclaveError(
      "JOB_SETUP_FAILED",
      "the baseline data's features or classes differ from the evaluation data's",
    );
  const k = kernels();
  const plan = defaultPlan(job.strategy);
  const net = new Network(start.model, k, new CryptoRandom());
  net.loadWeights(start.initial);
  const epochs = job.rounds * plan.epochs;
  await train(net, k, pooled, {
    epochs,
    batchSize: plan.batchSize,
    optimizer: new SgdOptimizer(k, plan.learningRate, plan.momentum),
    sampling: new CryptoRandom(),
  });
  return { ...evaluate(net, data), examples: pooled.rows, epochs };
}

const UNKNOWN = { accuracy: NaN, loss: NaN };

/** Without held-out data: the model's shape from the bundled dataset the job names, or the job cannot run. */
async function bundledShape(job: FederationJob): Promise<Examples & { numClasses: number }> {
  const bundled = dirname(BUNDLED_DATASET);
  if (!existsSync(join(bundled, job.dataset_id)))
    throw new EnclaveError(
      "JOB_SETUP_FAILED",
      "the coordinator was started without --eval-data and dataset_id names no bundled dataset: it cannot shape the job's model",
    );
  return (await loadDataset(bundled, job.dataset_id)).dataset;
}
