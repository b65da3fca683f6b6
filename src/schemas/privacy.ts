import { z } from "zod";

/** Hard ceiling on epsilon, whatever a job asks for (specification). */
export const EPSILON_HARD_CEILING = 5.0;
export const DEFAULT_DELTA = 1e-5;

export const PrivacyMechanism = z.enum(["DP_SGD"]);
export type PrivacyMechanism = z.infer<typeof PrivacyMechanism>;

export const PrivacyConfig = z
  .object({
    mechanism: PrivacyMechanism,
    noise_multiplier: z.number().positive("must be > 0").max(1e6, "must be <= 1e6"),
    max_grad_norm: z.number().positive("must be > 0").finite("must be finite"),
    target_epsilon: z
      .number()
      .positive("must be > 0")
      .max(EPSILON_HARD_CEILING, `must be <= ${EPSILON_HARD_CEILING} (the hard ceiling)`),
    delta: z.number().gt(0, "must be > 0").lt(1, "must be < 1").default(DEFAULT_DELTA),
  })
  .strict()
  .meta({ id: "PrivacyConfig", description: "Differential-privacy settings of a training job." });
export type PrivacyConfig = z.output<typeof PrivacyConfig>;
export type PrivacyConfigInput = z.input<typeof PrivacyConfig>;
