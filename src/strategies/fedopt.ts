import { z } from "zod";
import { parseContract } from "../schemas/contract.js";
import type { TensorMap } from "../tensor/tensor.js";
import { DeltaAccumulator } from "./delta-accumulator.js";
import { AggregationError } from "./errors.js";
import { RoundBase, type RoundOutcome, type RoundSequencer } from "./round-base.js";
import { assertStateMatches, packState, unpackState } from "./state-tensors.js";
import { StrategyBase, Weighting, weightOf } from "./strategy-base.js";
import type { ClientUpdate, RoundAggregator, RoundContext } from "./types.js";

export const FedOptOptions = z
  .object({
    /** η, the server learning rate. */
    serverLr: z.number().positive("must be > 0").finite("must be finite").default(0.01),
    beta1: z.number().min(0, "must be >= 0").lt(1, "must be < 1").default(0.9),
    beta2: z.number().min(0, "must be >= 0").lt(1, "must be < 1").default(0.99),
    /** τ, the adaptivity: added to √v, and v starts at τ². */
    tau: z.number().positive("must be > 0").finite("must be finite").default(1e-3),
    /** Weighting of the mean pseudo-gradient: the paper averages uniformly, Flower by examples. */
    weighting: Weighting.optional(),
    /**
     * "reddi" (default): the paper's Algorithm 2, v starting at τ², no bias correction.
     * "flower": Flower's FedAdam/FedYogi (flwr.server.strategy), so a user moving from Flower gets
     * the same models: v starts at 0, the mean is weighted by examples, and FedAdam's step is
     * bias-corrected as Flower does it, η·√(1 − β₂^(r+1)) / (1 − β₁^(r+1)) at round r (FedYogi's is not).
     */
    variant: z.enum(["reddi", "flower"]).default("reddi"),
  })
  .strict();
export type FedOptOptions = z.input<typeof FedOptOptions>;

type SecondMomentRule = "adam" | "yogi";

/**
 * FedAdam and FedYogi (Reddi et al. 2021, "Adaptive Federated Optimization", Algorithm 2):
 *   Δ = mean(y_i) − x                       (the pseudo-gradient, an ascent direction)
 *   m ← β₁ m + (1 − β₁) Δ                   (m starts at 0)
 *   Adam: v ← β₂ v + (1 − β₂) Δ²
 *   Yogi: v ← v − (1 − β₂) Δ² sign(v − Δ²)  (v starts at τ²)
 *   x ← x + η m / (√v + τ)
 * No bias correction, as in the paper. m and v are per-coordinate state kept across rounds.
 * `variant: "flower"` follows Flower instead: v starts at 0, examples weighting, FedAdam's η bias-corrected.
 */
abstract class FedOpt extends StrategyBase {
  readonly streaming = true;
  readonly serverLr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly tau: number;
  readonly weighting: Weighting;
  readonly variant: "reddi" | "flower";
  private m: TensorMap | null = null;
  private v: TensorMap | null = null;

  constructor(
    options: FedOptOptions,
    readonly rule: SecondMomentRule,
    what: string,
  ) {
    super();
    const o = parseContract(FedOptOptions, options, what);
    this.serverLr = o.serverLr;
    this.beta1 = o.beta1;
    this.beta2 = o.beta2;
    this.tau = o.tau;
    this.variant = o.variant;
    this.weighting = o.weighting ?? (o.variant === "flower" ? "examples" : "uniform");
  }

  protected openRound(ctx: RoundContext, generation: number): RoundAggregator {
    if (this.m !== null && this.v !== null) {
      assertStateMatches(ctx.global, this.m, `${this.name} first moment`);
      assertStateMatches(ctx.global, this.v, `${this.name} second moment`);
    }
    return new FedOptRound(ctx, this.sequencer, generation, this, this.m, this.v, (m, v) => {
      this.m = m;
      this.v = v;
    });
  }

  protected override stateTensors(): TensorMap {
    return packState({ m: this.m, v: this.v });
  }

  protected override loadStateTensors(tensors: TensorMap): void {
    const { m, v } = unpackState(tensors, ["m", "v"], `${this.name} state`);
    for (const t of v.values()) {
      if (t.data.some((x) => x < 0)) {
        throw new AggregationError("STATE_INVALID", `${this.name} state: second moment must be >= 0`, {
          field: "state",
        });
      }
    }
    this.m = m.size === 0 ? null : m;
    this.v = v.size === 0 ? null : v;
  }
}

interface FedOptParams {
  readonly rule: SecondMomentRule;
  readonly beta1: number;
  readonly beta2: number;
  readonly tau: number;
  readonly serverLr: number;
  readonly variant: "reddi" | "flower";
}

/** The server step size of a round: η, or Flower's bias-corrected η at round r (its server_round). */
function stepSize(p: FedOptParams, round: number): number {
  if (p.variant === "reddi" || p.rule === "yogi") return p.serverLr;
  return (p.serverLr * Math.sqrt(1 - p.beta2 ** (round + 1))) / (1 - p.beta1 ** (round + 1));
}

/** New m, v and model from the summed pseudo-gradient (float64 math, float32 results). */
function fedOptStep(
  p: FedOptParams,
  round: number,
  global: TensorMap,
  sums: Map<string, Float64Array>,
  totalWeight: number,
  m0: TensorMap | null,
  v0: TensorMap | null,
): { global: TensorMap; m: TensorMap; v: TensorMap } {
  const { beta1: b1, beta2: b2, tau } = p;
  const eta = stepSize(p, round);
  const v00 = p.variant === "flower" ? 0 : tau * tau;
  const out: TensorMap = new Map();
  const m: TensorMap = new Map();
  const v: TensorMap = new Map();
  for (const [name, t] of global) {
    const xd = t.data;
    const sd = sums.get(name)!;
    const md = m0?.get(name)!.data;
    const vd = v0?.get(name)!.data;
    const xo = new Float32Array(xd.length);
    const mo = new Float32Array(xd.length);
    const vo = new Float32Array(xd.length);
    for (let i = 0; i < xd.length; i++) {
      const delta = sd[i] / totalWeight;
      const d2 = delta * delta;
      const mPrev = md ? md[i] : 0;
      const vPrev = vd ? vd[i] : v00;
      const mi = b1 * mPrev + (1 - b1) * delta;
      const vi =
        p.rule === "adam" ? b2 * vPrev + (1 - b2) * d2 : vPrev - (1 - b2) * d2 * Math.sign(vPrev - d2);
      xo[i] = xd[i] + (eta * mi) / (Math.sqrt(vi) + tau);
      mo[i] = mi;
      vo[i] = vi;
    }
    out.set(name, { shape: [...t.shape], data: xo });
    m.set(name, { shape: [...t.shape], data: mo });
    v.set(name, { shape: [...t.shape], data: vo });
  }
  return { global: out, m, v };
}

class FedOptRound extends RoundBase {
  private readonly acc: DeltaAccumulator;
  constructor(
    ctx: RoundContext,
    sequencer: RoundSequencer,
    generation: number,
    private readonly strategy: FedOpt,
    private readonly m: TensorMap | null,
    private readonly v: TensorMap | null,
    private readonly commit: (m: TensorMap, v: TensorMap) => void,
  ) {
    super(ctx, sequencer, generation);
    this.acc = new DeltaAccumulator(ctx.global);
  }

  protected accept(u: ClientUpdate): void {
    this.acc.add(u.weights, this.global, weightOf(u, this.strategy.weighting));
  }

  protected complete(): RoundOutcome {
    const r = fedOptStep(
      this.strategy,
      this.round,
      this.global,
      this.acc.sums,
      this.acc.totalWeight,
      this.m,
      this.v,
    );
    this.commit(r.m, r.v);
    return { global: r.global };
  }
}

export class FedAdam extends FedOpt {
  readonly name = "FED_ADAM" as const;
  constructor(options: FedOptOptions = {}) {
    super(options, "adam", "FedAdam options");
  }
}

export class FedYogi extends FedOpt {
  readonly name = "FED_YOGI" as const;
  constructor(options: FedOptOptions = {}) {
    super(options, "yogi", "FedYogi options");
  }
}
