import { z } from "zod";
import { parseContract } from "../schemas/contract.js";
import { addScaled, DeltaAccumulator } from "./delta-accumulator.js";
import { RoundBase, type RoundOutcome, type RoundSequencer } from "./round-base.js";
import { StrategyBase, Weighting, weightOf } from "./strategy-base.js";
import type { ClientBroadcast, ClientUpdate, RoundAggregator, RoundContext } from "./types.js";

export const FedAvgOptions = z.object({ weighting: Weighting.default("examples") }).strict();
export type FedAvgOptions = z.input<typeof FedAvgOptions>;

/**
 * The streaming weighted mean x' = x + Σ w_i (y_i − x) / Σ w_i = Σ w_i y_i / Σ w_i.
 * Shared by FedAvg and FedProx, whose server sides are identical.
 */
export class MeanRound extends RoundBase {
  private readonly acc;
  constructor(
    ctx: RoundContext,
    sequencer: RoundSequencer,
    generation: number,
    private readonly weighting: Weighting,
    broadcast: ClientBroadcast = {},
  ) {
    super(ctx, sequencer, generation, { broadcast });
    this.acc = new DeltaAccumulator(ctx.global);
  }

  protected accept(u: ClientUpdate): void {
    this.acc.add(u.weights, this.global, weightOf(u, this.weighting));
  }

  protected complete(): RoundOutcome {
    return { global: addScaled(this.global, this.acc.sums, 1 / this.acc.totalWeight) };
  }
}

/** FedAvg (McMahan et al. 2017): the numExamples-weighted mean of the client models. */
export class FedAvg extends StrategyBase {
  readonly name = "FED_AVG" as const;
  readonly streaming = true;
  readonly weighting: Weighting;

  constructor(options: FedAvgOptions = {}) {
    super();
    this.weighting = parseContract(FedAvgOptions, options, "FedAvg options").weighting;
  }

  protected openRound(ctx: RoundContext, generation: number): RoundAggregator {
    return new MeanRound(ctx, this.sequencer, generation, this.weighting);
  }
}
