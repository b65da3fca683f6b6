import { basename, dirname } from "node:path";
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
   * gives the model its input and class counts and scores each round's global model.
   */
  evalData: string;
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
    const data = test;
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
  };
}
