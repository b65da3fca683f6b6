import { z } from "zod";
import { checkDatasetId } from "../data/sentry.js";
import { DatasetError } from "../data/dataset-error.js";
import { PrivacyConfig } from "./privacy.js";
import { AGGREGATION_STRATEGIES, strategyOptionIssues, strategyOptionsJsonSchema } from "./strategy-options.js";

/**
 * A client id becomes a directory name (simulation homes, checkpoints): the agent's node_id rule,
 * so `../`, NUL, separators and 5,000-character ids are refused before anything is written.
 */
export const ClientId = z
  .string()
  .min(1, "must be a non-empty string")
  .max(128, "must be at most 128 characters")
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "must be letters, digits, '.', '_' or '-' (not starting with '.', '_' or '-')");

/** A dataset id is resolved as a path inside a data root: the Data Sentry's rules, checked in the contract. */
const DatasetId = z
  .string()
  .min(1, "must be a non-empty string")
  .max(1024, "must be at most 1024 characters")
  .superRefine((id, ctx) => {
    try {
      checkDatasetId(id);
    } catch (err) {
      if (!(err instanceof DatasetError)) throw err;
      ctx.addIssue({ code: "custom", message: err.issues[0]?.rule ?? "is not a valid dataset id" });
    }
  })
  .meta({
    description:
      "A relative path inside the agent's data root: no '..', '.', empty or absolute segments, backslashes, drive letters or control characters.",
  });

export const AggregationStrategy = z.enum(AGGREGATION_STRATEGIES).meta({
  id: "AggregationStrategy",
  description:
    "Server-side aggregation rule of a federation job. The sites train DP-SGD for every one; FED_PROX adds the proximal term (proximal_mu) and SCAFFOLD the control variates on the sites.",
});
export type AggregationStrategy = z.infer<typeof AggregationStrategy>;

export const MAX_ROUNDS = 10_000;

export const FederationJob = z
  .object({
    job_id: z.uuid("must be a UUID"),
    clients: z
      .array(ClientId)
      .min(1, "must list at least one client")
      .refine((c) => new Set(c).size === c.length, "must not contain duplicates")
      .meta({ uniqueItems: true }),
    min_clients: z.number().int("must be an integer").min(1, "must be >= 1"),
    rounds: z.number().int("must be an integer").min(1, "must be >= 1").max(MAX_ROUNDS, `must be <= ${MAX_ROUNDS}`),
    strategy: AggregationStrategy,
    strategy_options: z
      .record(z.string(), z.unknown())
      .optional()
      .meta({
        description:
          "The strategy's hyperparameters (snake_case), checked against the strategy named in `strategy`; omitted options take the strategy's defaults.",
      }),
    proximal_mu: z.number().min(0, "must be >= 0").finite("must be finite").default(0.01),
    privacy: PrivacyConfig,
    dataset_id: DatasetId,
    model_arch: z.string().min(1, "must be a non-empty string").max(128, "must be at most 128 characters"),
  })
  .strict()
  .superRefine((job, ctx) => {
    if (job.min_clients > job.clients.length) {
      ctx.addIssue({
        code: "custom",
        path: ["min_clients"],
        message: `must be <= clients.length (${job.clients.length})`,
      });
    }
    for (const issue of strategyOptionIssues(job)) ctx.addIssue({ code: "custom", ...issue });
  })
  .meta({
    id: "FederationJob",
    description:
      "A federated training job submitted to the coordinator. Checked by the TypeScript validator only (JSON Schema cannot say it): min_clients <= the number of clients; KRUM and MULTI_KRUM need min_clients >= 2f + 3 and multi_krum <= min_clients - f.",
    // The per-strategy options, as JSON Schema: strategy X takes X's strategy_options.
    allOf: strategyOptionsJsonSchema(),
  });
export type FederationJob = z.output<typeof FederationJob>;
export type FederationJobInput = z.input<typeof FederationJob>;
