import { z } from "zod";
import { parseContract } from "../schemas/contract.js";
import { squaredDistance } from "../tensor/tensor-math.js";
import type { TensorMap } from "../tensor/tensor.js";
import { BufferedRound } from "./buffered-round.js";
import { AggregationError } from "./errors.js";
import type { RoundOutcome } from "./round-base.js";
import { StrategyBase } from "./strategy-base.js";
import type { RoundAggregator, RoundContext } from "./types.js";

/** m of Multi-Krum: at least 2 (m = 1 is Krum). */
export const MultiKrumCount = z.number().int("must be an integer").min(2, "must be >= 2 (1 is KRUM)");

export const KrumOptions = z
  .object({
    /** f: the number of Byzantine clients tolerated. Needs n ≥ 2f + 3 updates. */
    byzantine: z.number().int("must be an integer").min(0, "must be >= 0"),
    /** m: Multi-Krum averages the m best-scored updates; 1 is plain Krum. Needs m ≤ n − f. */
    multiKrum: z.number().int("must be an integer").min(1, "must be >= 1").default(1),
  })
  .strict();
export type KrumOptions = z.input<typeof KrumOptions>;

/**
 * Krum scores: score(i) = Σ of the n − f − 2 smallest ‖y_i − y_j‖² over j ≠ i.
 * Pairwise distances are O(n² · model).
 */
export function krumScores(models: readonly TensorMap[], byzantine: number): Float64Array {
  const n = models.length;
  const d = Array.from({ length: n }, () => new Float64Array(n));
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) d[i][j] = d[j][i] = squaredDistance(models[i], models[j]);
  }
  const closest = n - byzantine - 2;
  const scores = new Float64Array(n);
  const others = new Float64Array(n - 1);
  for (let i = 0; i < n; i++) {
    let k = 0;
    for (let j = 0; j < n; j++) if (j !== i) others[k++] = d[i][j];
    others.sort();
    let s = 0;
    for (let t = 0; t < closest; t++) s += others[t];
    scores[i] = s;
  }
  return scores;
}

/**
 * Krum and Multi-Krum (Blanchard et al. 2017): select the m updates with the lowest Krum score
 * (ties go to the smaller client id) and average them uniformly. Not streaming.
 */
export class Krum extends StrategyBase {
  readonly name: "KRUM" | "MULTI_KRUM";
  readonly streaming = false;
  readonly byzantine: number;
  readonly multiKrum: number;

  constructor(options: KrumOptions) {
    super();
    const o = parseContract(KrumOptions, options, "Krum options");
    this.byzantine = o.byzantine;
    this.multiKrum = o.multiKrum;
    this.name = o.multiKrum > 1 ? "MULTI_KRUM" : "KRUM";
  }

  protected openRound(ctx: RoundContext, generation: number): RoundAggregator {
    const f = this.byzantine;
    const m = this.multiKrum;
    return new (class extends BufferedRound {
      protected complete(): RoundOutcome {
        const models = this.models();
        const ids = this.sortedClientIds();
        const n = models.length;
        if (n < 2 * f + 3 || m > n - f) {
          throw new AggregationError(
            "TOO_FEW_UPDATES",
            `Krum with f=${f}, m=${m} needs at least ${Math.max(2 * f + 3, m + f)} updates, round ${this.round} has ${n}`,
          );
        }
        const scores = krumScores(models, f);
        const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b] || a - b);
        const chosen = order.slice(0, m);
        const global: TensorMap = new Map();
        for (const [name, t] of this.global) {
          const o = new Float32Array(t.data.length);
          if (m === 1) {
            o.set(models[chosen[0]].get(name)!.data);
          } else {
            const acc = new Float64Array(o.length);
            for (const c of chosen) {
              const yd = models[c].get(name)!.data;
              for (let i = 0; i < acc.length; i++) acc[i] += yd[i];
            }
            for (let i = 0; i < o.length; i++) o[i] = acc[i] / m;
          }
          global.set(name, { shape: [...t.shape], data: o });
        }
        return { global, selectedClients: chosen.map((c) => ids[c]) };
      }
    })(ctx, this.sequencer, generation);
  }
}
