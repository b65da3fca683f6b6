import { z } from "zod";
import { PrivacyConfig } from "./privacy.js";

export const AggregationStrategy = z
  .enum(["FED_AVG", "FED_PROX", "SCAFFOLD"])
  .meta({ id: "AggregationStrategy", description: "Server-side aggregation rule of a federation job." });
export type AggregationStrategy = z.infer<typeof AggregationStrategy>;

export const MAX_ROUNDS = 10_000;

export const FederationJob = z
  .object({
    job_id: z.uuid("must be a UUID"),
    clients: z
      .array(z.string().min(1, "must be a non-empty string"))
      .min(1, "must list at least one client")
      .refine((c) => new Set(c).size === c.length, "must not contain duplicates"),
    min_clients: z.number().int("must be an integer").min(1, "must be >= 1"),
    rounds: z.number().int("must be an integer").min(1, "must be >= 1").max(MAX_ROUNDS, `must be <= ${MAX_ROUNDS}`),
    strategy: AggregationStrategy,
    proximal_mu: z.number().min(0, "must be >= 0").finite("must be finite").default(0.01),
    privacy: PrivacyConfig,
    dataset_id: z.string().min(1, "must be a non-empty string"),
    model_arch: z.string().min(1, "must be a non-empty string"),
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
  })
  .meta({ id: "FederationJob", description: "A federated training job submitted to the coordinator." });
export type FederationJob = z.output<typeof FederationJob>;
export type FederationJobInput = z.input<typeof FederationJob>;
