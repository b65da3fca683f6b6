// Federated aggregation strategies (server side) and the client-side corrections they need.
export * from "./types.js";
export * from "./errors.js";
export { FedAvg, FedAvgOptions } from "./fedavg.js";
export { FedProx, FedProxOptions, proximalGradient, proximalLoss, fedProxGradientHook } from "./fedprox.js";
export { Scaffold, ScaffoldOptions } from "./scaffold.js";
export {
  initialControlVariate,
  scaffoldCorrectGradient,
  scaffoldControlUpdate,
  scaffoldGradientHook,
  type ScaffoldControlResult,
} from "./scaffold-client.js";
export { FedAdam, FedYogi, FedOptOptions } from "./fedopt.js";
export { CoordinateMedian, CoordinateMedianOptions, median } from "./coordinate-median.js";
export { TrimmedMean, TrimmedMeanOptions, trimmedMean } from "./trimmed-mean.js";
export { Krum, KrumOptions, MultiKrumCount, krumScores } from "./krum.js";
export { DpFedAvg, DpFedAvgOptions, clipFactor, sampleClients, type DpFedAvgDeps } from "./dp-fedavg.js";
export { Weighting } from "./strategy-base.js";
export { StrategyArgumentError, type GradientHook, type TrainableTensor } from "./trainable.js";
export { StrategySpec, createStrategy, strategyForJob, strategySpecForJob } from "./factory.js";
