import { z } from "zod";
import { parseContract } from "../schemas/contract.js";
import { BufferedRound, coordinatewise } from "./buffered-round.js";
import type { RoundOutcome } from "./round-base.js";
import { StrategyBase } from "./strategy-base.js";
import type { RoundAggregator, RoundContext } from "./types.js";

export const CoordinateMedianOptions = z.object({}).strict();
export type CoordinateMedianOptions = z.input<typeof CoordinateMedianOptions>;

/** The median of a buffer (sorted in place); the mean of the two middle values for an even count. */
export function median(values: Float64Array): number {
  values.sort();
  const n = values.length;
  const h = n >> 1;
  return n % 2 === 1 ? values[h] : (values[h - 1] + values[h]) / 2;
}

/**
 * Coordinate-wise median (Yin et al. 2018): x'_j = median_i(y_i,j), unweighted. Not streaming:
 * holds every update of the round. Tolerates fewer than half the clients being arbitrary.
 */
export class CoordinateMedian extends StrategyBase {
  readonly name = "MEDIAN" as const;
  readonly streaming = false;

  constructor(options: CoordinateMedianOptions = {}) {
    super();
    parseContract(CoordinateMedianOptions, options, "coordinate-median options");
  }

  protected openRound(ctx: RoundContext, generation: number): RoundAggregator {
    return new (class extends BufferedRound {
      protected complete(): RoundOutcome {
        return { global: coordinatewise(this.global, this.models(), median) };
      }
    })(ctx, this.sequencer, generation);
  }
}
