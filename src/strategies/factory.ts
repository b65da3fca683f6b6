import { z } from "zod";
import { parseContract } from "../schemas/contract.js";
import type { FederationJob } from "../schemas/federation.js";
import { camelCase, DEFAULT_TRIMMED_MEAN_BETA, defaultByzantine } from "../schemas/strategy-options.js";
import { CoordinateMedian, CoordinateMedianOptions } from "./coordinate-median.js";
import { DpFedAvg, DpFedAvgOptions, type DpFedAvgDeps } from "./dp-fedavg.js";
import { FedAvg, FedAvgOptions } from "./fedavg.js";
import { FedAdam, FedOptOptions, FedYogi } from "./fedopt.js";
import { FedProx, FedProxOptions } from "./fedprox.js";
import { Krum, KrumOptions, MultiKrumCount } from "./krum.js";
import { Scaffold, ScaffoldOptions } from "./scaffold.js";
import { TrimmedMean, TrimmedMeanOptions } from "./trimmed-mean.js";
import type { Strategy } from "./types.js";

/**
 * A strategy and its options as library configuration: `{ "name": "KRUM", "byzantine": 1 }`. The
 * names are a job's `strategy` names (plus DP_FED_AVG, which the DP_FEDAVG mechanism builds); a
 * job states the same options snake_case in `strategy_options` (see strategySpecForJob).
 */
export const StrategySpec = z.discriminatedUnion("name", [
  FedAvgOptions.extend({ name: z.literal("FED_AVG") }),
  FedProxOptions.extend({ name: z.literal("FED_PROX") }),
  ScaffoldOptions.extend({ name: z.literal("SCAFFOLD") }),
  FedOptOptions.extend({ name: z.literal("FED_ADAM") }),
  FedOptOptions.extend({ name: z.literal("FED_YOGI") }),
  CoordinateMedianOptions.extend({ name: z.literal("MEDIAN") }),
  TrimmedMeanOptions.extend({ name: z.literal("TRIMMED_MEAN") }),
  KrumOptions.omit({ multiKrum: true }).extend({ name: z.literal("KRUM") }),
  KrumOptions.extend({ name: z.literal("MULTI_KRUM"), multiKrum: MultiKrumCount }),
  DpFedAvgOptions.extend({ name: z.literal("DP_FED_AVG") }),
]);
export type StrategySpec = z.input<typeof StrategySpec>;

/** Validate a strategy spec (ValidationError naming the field) and build the strategy. */
export function createStrategy(spec: unknown, deps: DpFedAvgDeps = {}): Strategy {
  const { name, ...options } = parseContract(StrategySpec, spec, "aggregation strategy");
  switch (name) {
    case "FED_AVG":
      return new FedAvg(options as FedAvgOptions);
    case "FED_PROX":
      return new FedProx(options as FedProxOptions);
    case "SCAFFOLD":
      return new Scaffold(options as ScaffoldOptions);
    case "FED_ADAM":
      return new FedAdam(options as FedOptOptions);
    case "FED_YOGI":
      return new FedYogi(options as FedOptOptions);
    case "MEDIAN":
      return new CoordinateMedian(options as CoordinateMedianOptions);
    case "TRIMMED_MEAN":
      return new TrimmedMean(options as TrimmedMeanOptions);
    case "KRUM":
    case "MULTI_KRUM":
      return new Krum(options as KrumOptions);
    case "DP_FED_AVG":
      return new DpFedAvg(options as DpFedAvgOptions, deps);
  }
}

/**
 * The library spec of a (validated) job's strategy: its `strategy_options` under the strategy's
 * own option names, plus what the job says elsewhere (FED_PROX's mu is `proximal_mu`, SCAFFOLD's N
 * the number of clients) and the defaults that depend on the job (Krum's f and m, from min_clients).
 */
export function strategySpecForJob(job: FederationJob): StrategySpec {
  const o: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(job.strategy_options ?? {})) o[camelCase(key)] = value;
  switch (job.strategy) {
    case "FED_PROX":
      return { name: "FED_PROX", mu: job.proximal_mu, ...o };
    case "SCAFFOLD":
      return { name: "SCAFFOLD", totalClients: job.clients.length, ...o };
    case "KRUM":
    case "MULTI_KRUM": {
      const byzantine = (o.byzantine as number | undefined) ?? defaultByzantine(job.min_clients);
      return job.strategy === "KRUM"
        ? { name: "KRUM", byzantine }
        : {
            name: "MULTI_KRUM",
            byzantine,
            multiKrum: (o.multiKrum as number | undefined) ?? job.min_clients - byzantine,
          };
    }
    case "TRIMMED_MEAN":
      return { name: "TRIMMED_MEAN", beta: DEFAULT_TRIMMED_MEAN_BETA, ...o };
    default:
      return { name: job.strategy, ...o } as StrategySpec;
  }
}

/** The coordinator's strategy for a job (validated): one place for every caller (simulation, job runner). */
export function strategyForJob(job: FederationJob): Strategy {
  return createStrategy(strategySpecForJob(job));
}
