import { z } from "zod";
import { CoordinateMedianOptions } from "../strategies/coordinate-median.js";
import { FedAvgOptions } from "../strategies/fedavg.js";
import { FedOptOptions } from "../strategies/fedopt.js";
import { FedProxOptions } from "../strategies/fedprox.js";
import { KrumOptions, MultiKrumCount } from "../strategies/krum.js";
import { ScaffoldOptions } from "../strategies/scaffold.js";
import { TrimmedMeanOptions } from "../strategies/trimmed-mean.js";

/** Every aggregation strategy a job can name (client-level DP is the DP_FEDAVG privacy mechanism, not one of these). */
export const AGGREGATION_STRATEGIES = [
  "FED_AVG",
  "FED_PROX",
  "SCAFFOLD",
  "FED_ADAM",
  "FED_YOGI",
  "KRUM",
  "MULTI_KRUM",
  "MEDIAN",
  "TRIMMED_MEAN",
] as const;
export type AggregationStrategyName = (typeof AGGREGATION_STRATEGIES)[number];

/** `serverLr` -> `server_lr`: a strategy's own option name as a job states it. */
export const snakeCase = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** `server_lr` -> `serverLr`: a job's option name as the strategy's own option. */
export const camelCase = (key: string) => key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/**
 * A strategy's own options (the library's zod object, so the rules live in one place) as a job
 * states them: snake_case keys like every other job field. `fromJob` names the options the job
 * supplies elsewhere; `optional` those whose default depends on the job.
 */
function jobOptions(
  options: z.ZodObject,
  description: string,
  fromJob: readonly string[] = [],
  optional: Record<string, z.ZodType> = {},
): z.ZodObject {
  const shape: Record<string, z.ZodType> = {};
  for (const [key, rule] of Object.entries(options.shape)) {
    if (!fromJob.includes(key)) shape[snakeCase(key)] = optional[key] ?? (rule as z.ZodType);
  }
  return z.object(shape).strict().meta({ description });
}

const byzantine = KrumOptions.shape.byzantine.optional().meta({
  description: "f, the Byzantine clients tolerated; default the largest f with min_clients >= 2f + 3.",
});

/** `strategy_options` per strategy: what each accepts, with the strategy's own defaults. */
export const JOB_STRATEGY_OPTIONS: Record<AggregationStrategyName, z.ZodObject> = {
  FED_AVG: jobOptions(FedAvgOptions, "FedAvg: weighting (examples, the default, or uniform)."),
  FED_PROX: jobOptions(FedProxOptions, "FedProx: weighting; mu is the job's proximal_mu (the sites read it).", [
    "mu",
  ]),
  SCAFFOLD: jobOptions(
    ScaffoldOptions,
    "SCAFFOLD: server_lr (default 1), weighting (default uniform); N is the number of clients.",
    ["totalClients"],
  ),
  FED_ADAM: jobOptions(FedOptOptions, "FedAdam: server_lr, beta1, beta2, tau, weighting, variant (reddi or flower)."),
  FED_YOGI: jobOptions(FedOptOptions, "FedYogi: server_lr, beta1, beta2, tau, weighting, variant (reddi or flower)."),
  KRUM: jobOptions(KrumOptions, "Krum: byzantine (f).", ["multiKrum"], { byzantine }),
  MULTI_KRUM: jobOptions(KrumOptions, "Multi-Krum: byzantine (f) and multi_krum (m >= 2, default min_clients - f).", [], {
    byzantine,
    multiKrum: MultiKrumCount.optional(),
  }),
  MEDIAN: jobOptions(CoordinateMedianOptions, "Coordinate-wise median: no options."),
  TRIMMED_MEAN: jobOptions(
    TrimmedMeanOptions,
    "Coordinate-wise trimmed mean: beta, the fraction trimmed at each end (default 0.2, Flower's FedTrimmedAvg).",
    [],
    { beta: TrimmedMeanOptions.shape.beta.optional() },
  ),
};

/** TRIMMED_MEAN's beta when the job leaves it out (Flower's FedTrimmedAvg default). */
export const DEFAULT_TRIMMED_MEAN_BETA = 0.2;

/** Krum's f when the job leaves it out: the largest f with n >= 2f + 3 for n = min_clients. */
export function defaultByzantine(minClients: number): number {
  return Math.max(0, Math.floor((minClients - 3) / 2));
}

export interface StrategyIssue {
  path: (string | number)[];
  message: string;
}

/**
 * What is wrong with a job's strategy_options for its strategy (unknown keys, each option's rule,
 * and Krum's needs of min_clients), as issues on the job's own field paths.
 */
export function strategyOptionIssues(job: {
  strategy: AggregationStrategyName;
  strategy_options?: Record<string, unknown>;
  min_clients: number;
}): StrategyIssue[] {
  const result = JOB_STRATEGY_OPTIONS[job.strategy].safeParse(job.strategy_options ?? {});
  if (!result.success) {
    return result.error.issues.flatMap((i): StrategyIssue[] => {
      const path = ["strategy_options", ...i.path.map((p) => (typeof p === "symbol" ? String(p) : p))];
      if (i.code !== "unrecognized_keys") return [{ path, message: i.message }];
      // One issue per unknown key, named (bounded: a key is input too) under strategy_options.
      return i.keys.slice(0, 5).map((key) => ({
        path: [...path, key.length > 40 ? `${key.slice(0, 40)}...` : key],
        message: `is not an option of ${job.strategy}`,
      }));
    });
  }
  if (job.strategy !== "KRUM" && job.strategy !== "MULTI_KRUM") return [];
  const o = result.data as { byzantine?: number; multi_krum?: number };
  const f = o.byzantine ?? defaultByzantine(job.min_clients);
  const issues: StrategyIssue[] = [];
  if (job.min_clients < 2 * f + 3)
    issues.push({
      path: o.byzantine === undefined ? ["min_clients"] : ["strategy_options", "byzantine"],
      message: `${job.strategy} with f = ${f} needs min_clients >= ${2 * f + 3} (n >= 2f + 3 updates per round)`,
    });
  if (o.multi_krum !== undefined && o.multi_krum > job.min_clients - f)
    issues.push({
      path: ["strategy_options", "multi_krum"],
      message: `must be <= min_clients - byzantine (${job.min_clients - f})`,
    });
  return issues;
}

/** The per-strategy rules as JSON Schema (if strategy is X then strategy_options is X's). */
export function strategyOptionsJsonSchema(): object[] {
  return AGGREGATION_STRATEGIES.map((name) => {
    const { $schema: _, ...options } = z.toJSONSchema(JOB_STRATEGY_OPTIONS[name], {
      io: "input",
      target: "draft-2020-12",
    }) as Record<string, unknown>;
    return {
      if: { properties: { strategy: { const: name } }, required: ["strategy"] },
      then: { properties: { strategy_options: options } },
    };
  });
}
