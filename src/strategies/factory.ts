import { z } from "zod";
import { parseContract } from "../schemas/contract.js";
import { CoordinateMedian, CoordinateMedianOptions } from "./coordinate-median.js";
import { DpFedAvg, DpFedAvgOptions, type DpFedAvgDeps } from "./dp-fedavg.js";
import { FedAvg, FedAvgOptions } from "./fedavg.js";
import { FedAdam, FedOptOptions, FedYogi } from "./fedopt.js";
import { FedProx, FedProxOptions } from "./fedprox.js";
import { Krum, KrumOptions } from "./krum.js";
import { Scaffold, ScaffoldOptions } from "./scaffold.js";
import { TrimmedMean, TrimmedMeanOptions } from "./trimmed-mean.js";
import type { Strategy } from "./types.js";

/** A strategy and its options as configuration (a job file, the CLI): `{ "name": "KRUM", "byzantine": 1 }`. */
export const StrategySpec = z.discriminatedUnion("name", [
  FedAvgOptions.extend({ name: z.literal("FED_AVG") }),
  FedProxOptions.extend({ name: z.literal("FED_PROX") }),
  ScaffoldOptions.extend({ name: z.literal("SCAFFOLD") }),
  FedOptOptions.extend({ name: z.literal("FED_ADAM") }),
  FedOptOptions.extend({ name: z.literal("FED_YOGI") }),
  CoordinateMedianOptions.extend({ name: z.literal("COORDINATE_MEDIAN") }),
  TrimmedMeanOptions.extend({ name: z.literal("TRIMMED_MEAN") }),
  KrumOptions.extend({ name: z.literal("KRUM") }),
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
    case "COORDINATE_MEDIAN":
      return new CoordinateMedian(options as CoordinateMedianOptions);
    case "TRIMMED_MEAN":
      return new TrimmedMean(options as TrimmedMeanOptions);
    case "KRUM":
      return new Krum(options as KrumOptions);
    case "DP_FED_AVG":
      return new DpFedAvg(options as DpFedAvgOptions, deps);
  }
}
