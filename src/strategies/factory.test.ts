import { describe, expect, it } from "vitest";
import { FederationJob, parseContract, type FederationJobInput } from "../schemas/index.js";
import { AGGREGATION_STRATEGIES } from "../schemas/strategy-options.js";
import { createStrategy, strategyForJob, strategySpecForJob } from "./factory.js";
import type { FedAdam } from "./fedopt.js";
import type { Krum } from "./krum.js";
import type { TrimmedMean } from "./trimmed-mean.js";

const job = (patch: Partial<FederationJobInput>): FederationJob =>
  parseContract(
    FederationJob,
    {
      job_id: "3f1c2b9e-8a4d-4c1e-9b7a-2d5e6f708192",
      clients: ["a", "b", "c", "d", "e", "f", "g"],
      min_clients: 7,
      rounds: 2,
      strategy: "FED_AVG",
      privacy: { mechanism: "DP_SGD", noise_multiplier: 1, max_grad_norm: 1, target_epsilon: 3 },
      dataset_id: "d.csv",
      model_arch: "SimpleMLP",
      ...patch,
    },
    "FederationJob",
  );

describe("a job's strategy, built by strategyForJob", () => {
  it.each(AGGREGATION_STRATEGIES)("builds %s from the job alone, under the same name", (strategy) => {
    expect(strategyForJob(job({ strategy })).name).toBe(strategy);
  });

  it("maps snake_case strategy_options to the strategy's own options", () => {
    const adam = strategyForJob(
      job({ strategy: "FED_ADAM", strategy_options: { server_lr: 0.05, beta2: 0.9, variant: "flower" } }),
    ) as FedAdam;
    const direct = createStrategy({
      name: "FED_ADAM",
      serverLr: 0.05,
      beta2: 0.9,
      variant: "flower",
    }) as FedAdam;
    expect({ ...adam }).toEqual({ ...direct });
  });

  it("takes what the job says elsewhere: FED_PROX's mu, SCAFFOLD's N", () => {
    expect(strategySpecForJob(job({ strategy: "FED_PROX", proximal_mu: 0.3 }))).toEqual({
      name: "FED_PROX",
      mu: 0.3,
    });
    expect(strategySpecForJob(job({ strategy: "SCAFFOLD", strategy_options: { server_lr: 0.5 } }))).toEqual({
      name: "SCAFFOLD",
      totalClients: 7,
      serverLr: 0.5,
    });
  });

  it("derives Krum's f and Multi-Krum's m from min_clients when the job leaves them out", () => {
    // n = 7 updates: the largest f with n >= 2f + 3 is 2, and Multi-Krum then averages m = n - f = 5.
    const krum = strategyForJob(job({ strategy: "KRUM" })) as Krum;
    expect([krum.byzantine, krum.multiKrum]).toEqual([2, 1]);
    const multi = strategyForJob(job({ strategy: "MULTI_KRUM" })) as Krum;
    expect([multi.name, multi.byzantine, multi.multiKrum]).toEqual(["MULTI_KRUM", 2, 5]);
    const given = strategyForJob(
      job({ strategy: "MULTI_KRUM", strategy_options: { byzantine: 1, multi_krum: 3 } }),
    ) as Krum;
    expect([given.byzantine, given.multiKrum]).toEqual([1, 3]);
    expect((strategyForJob(job({ strategy: "TRIMMED_MEAN" })) as TrimmedMean).beta).toBe(0.2);
  });

  it("the library spec refuses Multi-Krum options under KRUM and m = 1 under MULTI_KRUM, naming the field", () => {
    expect(() => createStrategy({ name: "KRUM", byzantine: 0, multiKrum: 2 } as never)).toThrow(/multiKrum/);
    expect(() => createStrategy({ name: "MULTI_KRUM", byzantine: 0, multiKrum: 1 })).toThrow(
      /multiKrum: must be >= 2/,
    );
  });
});
