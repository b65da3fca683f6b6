import { z } from "zod";
import type { TensorMap } from "../tensor/tensor.js";
import { AggregationError } from "./errors.js";
import { RoundSequencer, validateGlobal } from "./round-base.js";
import type {
  ClientUpdate,
  RoundAggregator,
  RoundContext,
  Strategy,
  StrategyName,
  StrategyState,
} from "./types.js";

/** How client updates are weighted in a mean: by numExamples (McMahan et al.) or equally. */
export const Weighting = z.enum(["examples", "uniform"]);
export type Weighting = z.infer<typeof Weighting>;

export function weightOf(update: ClientUpdate, weighting: Weighting): number {
  return weighting === "examples" ? update.numExamples : 1;
}

/** Round ordering and state export shared by every strategy; stateless strategies export no tensors. */
export abstract class StrategyBase implements Strategy {
  abstract readonly name: StrategyName;
  abstract readonly streaming: boolean;
  protected readonly sequencer = new RoundSequencer();

  begin(ctx: RoundContext): RoundAggregator {
    if (typeof ctx !== "object" || ctx === null) {
      throw new AggregationError("GLOBAL_INVALID", "round context must be an object", { field: "round" });
    }
    validateGlobal(ctx.global);
    const generation = this.sequencer.open(ctx.round);
    return this.openRound(ctx, generation);
  }

  protected abstract openRound(ctx: RoundContext, generation: number): RoundAggregator;

  exportState(): StrategyState {
    return { round: this.sequencer.lastRound, tensors: this.stateTensors() };
  }

  restoreState(state: StrategyState): void {
    if (typeof state !== "object" || state === null || !(state.tensors instanceof Map)) {
      throw new AggregationError("STATE_INVALID", `${this.name} state must be { round, tensors }`);
    }
    this.loadStateTensors(state.tensors);
    this.sequencer.restore(state.round);
  }

  /** Copies of the cross-round tensors. */
  protected stateTensors(): TensorMap {
    return new Map();
  }

  /** Validate and adopt state tensors (throw STATE_INVALID without changing anything on a bad state). */
  protected loadStateTensors(tensors: TensorMap): void {
    if (tensors.size !== 0) {
      throw new AggregationError("STATE_INVALID", `${this.name} keeps no state tensors`);
    }
  }
}
