import { z } from "zod";

/** Hard ceiling on epsilon, whatever a job asks for (specification). */
export const EPSILON_HARD_CEILING = 5.0;
export const DEFAULT_DELTA = 1e-5;
/**
 * The largest delta any contract or flag takes. Delta is the probability that the epsilon guarantee
 * fails outright; at delta >= 1/n a mechanism may publish a whole record. Every dataset here has
 * n >= 100, and the data-time check (deltaRowsIssue) bounds it by the dataset's own n.
 */
export const MAX_DELTA = 1e-3;
/** delta * n must stay at or below this: delta well below 1/n for the dataset's n rows. */
export const MAX_DELTA_TIMES_ROWS = 0.1;

/**
 * The delta a job takes on `rows` training rows when it names none: DEFAULT_DELTA, or the largest
 * delta deltaRowsIssue allows (MAX_DELTA_TIMES_ROWS / n) when that is stricter. Fashion-MNIST's
 * 60,000 rows get 1.67e-6, not the 1e-5 published results are quoted at (docs/privacy.md).
 */
export function defaultDeltaFor(rows: number): number {
  let delta = Math.min(DEFAULT_DELTA, MAX_DELTA_TIMES_ROWS / Math.max(1, rows));
  // Rounding may put delta·n a hair above the bound: step down to the next smaller double.
  while (delta * rows > MAX_DELTA_TIMES_ROWS) delta -= delta * Number.EPSILON;
  return delta;
}

/** The rule a delta breaks on a dataset of `rows` training rows, or null when it is allowed. */
export function deltaRowsIssue(delta: number, rows: number): string | null {
  if (!(delta > 0 && delta <= MAX_DELTA)) return `must be in (0, ${MAX_DELTA}]`;
  if (delta * rows > MAX_DELTA_TIMES_ROWS) {
    const bound = MAX_DELTA_TIMES_ROWS / rows;
    return `must be <= ${bound.toPrecision(3)} (${MAX_DELTA_TIMES_ROWS}/n, well below 1/n for this dataset's n = ${rows} training rows)`;
  }
  return null;
}

/**
 * DP_SGD: example-level DP on each agent (per-example clipping and noise while training).
 * DP_FEDAVG: client-level DP at the coordinator (each client's update clipped, noise on the
 * aggregate, Poisson client sampling); agents then send un-noised updates, so an agent takes
 * such a job only when its owner has opted in.
 */
export const PrivacyMechanism = z.enum(["DP_SGD", "DP_FEDAVG"]);
export type PrivacyMechanism = z.infer<typeof PrivacyMechanism>;

export const PrivacyConfig = z
  .object({
    mechanism: PrivacyMechanism,
    noise_multiplier: z
      .number()
      .positive("must be > 0")
      .max(1e6, "must be <= 1e6")
      .meta({
        description:
          "DP_SGD: noise std / max_grad_norm per step on each agent. DP_FEDAVG: z, the server-side noise std / max_grad_norm on the sum of client updates.",
      }),
    max_grad_norm: z
      .number()
      .positive("must be > 0")
      .finite("must be finite")
      .meta({
        description:
          "DP_SGD: per-example gradient clip norm. DP_FEDAVG: C, the L2 clip norm of each client's model update.",
      }),
    target_epsilon: z
      .number()
      .positive("must be > 0")
      .max(EPSILON_HARD_CEILING, `must be <= ${EPSILON_HARD_CEILING} (the hard ceiling)`),
    delta: z
      .number()
      .gt(0, "must be > 0")
      .max(MAX_DELTA, `must be <= ${MAX_DELTA}`)
      .default(DEFAULT_DELTA)
      .meta({
        description: `Also <= ${MAX_DELTA_TIMES_ROWS}/n for each dataset's n training rows (checked by the agent holding the data).`,
      }),
    client_sampling_rate: z
      .number()
      .gt(0, "must be > 0")
      .max(1, "must be <= 1")
      .optional()
      .meta({
        description:
          "DP_FEDAVG only: q, the probability with which each client joins a round (Poisson sampling). Default 1.",
      }),
  })
  .strict()
  .superRefine((p, ctx) => {
    // A rate DP-SGD would ignore must not look as if it applied.
    if (p.client_sampling_rate !== undefined && p.mechanism !== "DP_FEDAVG") {
      ctx.addIssue({
        code: "custom",
        path: ["client_sampling_rate"],
        message: 'is allowed only with mechanism "DP_FEDAVG"',
      });
    }
  })
  .meta({
    id: "PrivacyConfig",
    description: "Differential-privacy settings of a training job.",
    // The superRefine above, as JSON Schema: client_sampling_rate only with DP_FEDAVG.
    if: { properties: { mechanism: { const: "DP_SGD" } }, required: ["mechanism"] },
    then: { not: { required: ["client_sampling_rate"] } },
  });
export type PrivacyConfig = z.output<typeof PrivacyConfig>;
export type PrivacyConfigInput = z.input<typeof PrivacyConfig>;
