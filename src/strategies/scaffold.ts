import { z } from "zod";
import { parseContract } from "../schemas/contract.js";
import { cloneTensors, zerosLike, type TensorMap } from "../tensor/tensor.js";
import { addScaled, DeltaAccumulator } from "./delta-accumulator.js";
import { AggregationError } from "./errors.js";
import { RoundBase, type RoundOutcome, type RoundSequencer } from "./round-base.js";
import { assertStateMatches, packState, unpackState } from "./state-tensors.js";
import { StrategyBase, Weighting, weightOf } from "./strategy-base.js";
import type { ClientUpdate, RoundAggregator, RoundContext } from "./types.js";

export const ScaffoldOptions = z
  .object({
    /** N: every client that may ever take part (c is the mean of all N client control variates). */
    totalClients: z.number().int("must be an integer").min(1, "must be >= 1"),
    /** η_g, the global step size. */
    serverLr: z.number().positive("must be > 0").finite("must be finite").default(1),
    /** Weighting of the model deltas; the paper averages uniformly. Δc is always uniform. */
    weighting: Weighting.default("uniform"),
  })
  .strict();
export type ScaffoldOptions = z.input<typeof ScaffoldOptions>;

/**
 * SCAFFOLD server (Karimireddy et al. 2020, Algorithm 1):
 *   x ← x + η_g · mean_S(y_i − x)
 *   c ← c + (|S|/N) · mean_S(Δc_i)  =  c + (1/N) Σ_S Δc_i
 * c starts at zero and is broadcast with x each round (RoundAggregator.broadcast.controlVariate).
 */
export class Scaffold extends StrategyBase {
  readonly name = "SCAFFOLD" as const;
  readonly streaming = true;
  readonly totalClients: number;
  readonly serverLr: number;
  readonly weighting: Weighting;
  private c: TensorMap | null = null;

  constructor(options: ScaffoldOptions) {
    super();
    const o = parseContract(ScaffoldOptions, options, "SCAFFOLD options");
    this.totalClients = o.totalClients;
    this.serverLr = o.serverLr;
    this.weighting = o.weighting;
  }

  /** A copy of the current server control variate (null before the first round). */
  controlVariate(): TensorMap | null {
    return this.c === null ? null : cloneTensors(this.c);
  }

  protected openRound(ctx: RoundContext, generation: number): RoundAggregator {
    if (this.c !== null) assertStateMatches(ctx.global, this.c, "SCAFFOLD control variate");
    const c = this.c ?? zerosLike(ctx.global);
    return new ScaffoldRound(ctx, this.sequencer, generation, this, c, (next) => {
      this.c = next;
    });
  }

  protected override stateTensors(): TensorMap {
    return packState({ c: this.c });
  }

  protected override loadStateTensors(tensors: TensorMap): void {
    const { c } = unpackState(tensors, ["c"], "SCAFFOLD state");
    this.c = c.size === 0 ? null : c;
  }
}

class ScaffoldRound extends RoundBase {
  private readonly dy: DeltaAccumulator;
  private readonly dc: DeltaAccumulator;

  constructor(
    ctx: RoundContext,
    sequencer: RoundSequencer,
    generation: number,
    private readonly strategy: Scaffold,
    private readonly c: TensorMap,
    private readonly commit: (c: TensorMap) => void,
  ) {
    super(ctx, sequencer, generation, {
      needsControlDelta: true,
      broadcast: { controlVariate: cloneTensors(c) },
    });
    this.dy = new DeltaAccumulator(ctx.global);
    this.dc = new DeltaAccumulator(ctx.global);
  }

  protected accept(u: ClientUpdate): void {
    this.dy.add(u.weights, this.global, weightOf(u, this.strategy.weighting));
    this.dc.add(u.controlDelta!, null, 1);
  }

  protected complete(): RoundOutcome {
    const n = this.strategy.totalClients;
    if (this.count > n) {
      throw new AggregationError(
        "TOO_MANY_UPDATES",
        `SCAFFOLD round ${this.round} has ${this.count} updates but totalClients is ${n}`,
      );
    }
    const global = addScaled(this.global, this.dy.sums, this.strategy.serverLr / this.dy.totalWeight);
    const c = addScaled(this.c, this.dc.sums, 1 / n);
    this.commit(c);
    return { global, controlVariate: cloneTensors(c) };
  }
}
