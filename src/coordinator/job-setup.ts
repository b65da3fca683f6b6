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
import { kernels } from "../tensor/backend.js";
import { evaluate, type Examples } from "../training/trainer.js";
import { ClientLevelDp } from "./client-level-dp.js";
import type { JobSetup } from "./job-runner.js";

export interface CoordinatorJobSetupOptions {
  /**
   * A labelled dataset file the coordinator holds (its own held-out data, never a site's): it
   * gives the model its input and class counts and scores each round's global model. Without it
   * the model is shaped from the bundled dataset the job names (`data/<dataset_id>` of this
   * package), never scored: each round's accuracy and loss are unknown (NaN; null in JSON).
   */
  evalData?: string;
  /** Hidden layer widths of SimpleMLP (default [32], as `enclave simulate`). */
  hidden?: number[];
  /** The coordinator's database (DP_FEDAVG keeps the job's client-level budget in it). */
  database?: () => Promise<Database>;
  accountant?: AccountantName;
}

/**
 * How the coordinator's job runner sets a job up: the model from the job's `model_arch` and the
 * evaluation data's shape, a fresh global model from the OS CSPRNG, the default local plan, the
 * job's strategy, and for DP_FEDAVG the client-level DP wrapper on the coordinator's ledger.
 */
export function coordinatorJobSetup(
  o: CoordinatorJobSetupOptions,
): (job: FederationJob) => Promise<JobSetup> {
  let test: (Examples & { numClasses: number }) | undefined;
  const k = kernels();
  return async (job) => {
    // Never scored without held-out data: accuracy and loss unknown.
    if (!o.evalData) return { ...(await setup(job, await bundledShape(job))), evaluate: () => UNKNOWN };
    if (!test) {
      const { dataset, schema } = await loadDataset(dirname(o.evalData), basename(o.evalData));
      const st =
        schema.format === "csv" && schema.standardization
          ? {
              mean: Float64Array.from(schema.standardization.mean),
              std: Float64Array.from(schema.standardization.std),
            }
          : fitStandardizer(dataset);
      test = { ...applyStandardizer(dataset, st), numClasses: dataset.numClasses };
    }
    return setup(job, test);
  };
  async function setup(job: FederationJob, data: Examples & { numClasses: number }): Promise<JobSetup> {
    const model = buildModelSpec(job.model_arch, {
      input_dim: data.numFeatures,
      num_classes: data.numClasses,
      ...(job.model_arch === "SimpleMLP" ? { hidden: o.hidden ?? [32] } : {}),
    });
    const initial = new Network(model, k, new CryptoRandom()).weights();
    const evalNet = new Network(model, k, new CryptoRandom());
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
      plan: defaultPlan(job.strategy),
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
