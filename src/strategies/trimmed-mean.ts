import { z } from "zod";
import { parseContract } from "../schemas/contract.js";
import { BufferedRound, coordinatewise } from "./buffered-round.js";
import type { RoundOutcome } from "./round-base.js";
import { StrategyBase } from "./strategy-base.js";
import type { RoundAggregator, RoundContext } from "./types.js";

export const TrimmedMeanOptions = z
  .object({
    /** β: the fraction of updates dropped at EACH end of every coordinate, in [0, 0.5). */
    beta: z.number().min(0, "must be >= 0").lt(0.5, "must be < 0.5"),
  })
  .strict();
export type TrimmedMeanOptions = z.input<typeof TrimmedMeanOptions>;

/** Mean of a buffer (sorted in place) after dropping its k smallest and k largest values. */
export function trimmedMean(values: Float64Array, k: number): number {
  values.sort();
  let s = 0;
  for (let i = k; i < values.length - k; i++) s += values[i];
  return s / (values.length - 2 * k);
}

/**
 * Coordinate-wise β-trimmed mean (Yin et al. 2018): per coordinate, drop the ⌊βn⌋ largest and
 * ⌊βn⌋ smallest of the n client values and average the rest (unweighted). Not streaming.
 */
export class TrimmedMean extends StrategyBase {
  readonly name = "TRIMMED_MEAN" as const;
  readonly streaming = false;
  readonly beta: number;

  constructor(options: TrimmedMeanOptions) {
    super();
    this.beta = parseContract(TrimmedMeanOptions, options, "trimmed-mean options").beta;
  }

  protected openRound(ctx: RoundContext, generation: number): RoundAggregator {
    const beta = this.beta;
    return new (class extends BufferedRound {
      protected complete(): RoundOutcome {
        const models = this.models();
        // β < 0.5 keeps n − 2⌊βn⌋ ≥ 1.
        const k = Math.floor(beta * models.length + 1e-9); // 1e-9: 0.29 · 100 must trim 29, not 28
        return { global: coordinatewise(this.global, models, (v) => trimmedMean(v, k)) };
      }
    })(ctx, this.sequencer, generation);
  }
}
