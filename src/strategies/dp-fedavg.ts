import { z } from "zod";
import { parseContract } from "../schemas/contract.js";
import { CryptoRandom, type RandomSource } from "../random.js";
import { gaussianNoiseWords, type Kernels } from "../tensor/kernels.js";
import type { TensorMap } from "../tensor/tensor.js";
import { TypeScriptKernels } from "../tensor/ts-kernels.js";
import { DeltaAccumulator } from "./delta-accumulator.js";
import { AggregationError } from "./errors.js";
import { RoundBase, type RoundOutcome, type RoundSequencer } from "./round-base.js";
import { StrategyBase } from "./strategy-base.js";
import { StrategyArgumentError } from "./trainable.js";
import type { ClientUpdate, DpRoundAccounting, RoundAggregator, RoundContext } from "./types.js";

export const DpFedAvgOptions = z
  .object({
    /** C: each client's update y_i − x is scaled down to L2 norm at most C. */
    clipNorm: z.number().positive("must be > 0").finite("must be finite"),
    /** z: Gaussian noise of std z·C is added to the sum of clipped updates. */
    noiseMultiplier: z.number().positive("must be > 0").max(1e6, "must be <= 1e6"),
    /** q: each of the N clients is sampled into a round independently with probability q. */
    samplingRate: z.number().gt(0, "must be > 0").max(1, "must be <= 1"),
    /** N: the client population the rounds sample from. */
    totalClients: z.number().int("must be an integer").min(1, "must be >= 1"),
    /** η: x ← x + η · (noised mean update). */
    serverLr: z.number().positive("must be > 0").finite("must be finite").default(1),
    /** Let a non-cryptographic (seeded) noise source through: reproducible tests and simulations only. */
    allowInsecureRandom: z.boolean().default(false),
  })
  .strict();
export type DpFedAvgOptions = z.input<typeof DpFedAvgOptions>;

export interface DpFedAvgDeps {
  /** Noise source; the OS CSPRNG by default. */
  rng?: RandomSource;
  kernels?: Kernels;
}

/** Noise is drawn in chunks so the random words never cost more than a fixed buffer. */
const NOISE_CHUNK = 1 << 16;

/**
 * DP-FedAvg with client-level differential privacy (McMahan et al. 2018, "Learning Differentially
 * Private Recurrent Language Models", fixed-denominator estimator with uniform client weights):
 *   Δ_i = (y_i − x) · min(1, C / ‖y_i − x‖₂)          (flat clip over all tensors)
 *   x ← x + η · (Σ_i Δ_i + N(0, (z·C)² I)) / (q·N)
 * Dividing by the expected count qN, not the realised one, keeps one client's sensitivity at
 * C/(qN). Each round is the sampled Gaussian mechanism with (q, z): account it with the same
 * accountant as DP-SGD (RoundResult.privacy). numExamples is ignored (uniform weights) and client
 * metrics are not reported: they are outside the guarantee.
 */
export class DpFedAvg extends StrategyBase {
  readonly name = "DP_FED_AVG" as const;
  readonly streaming = true;
  readonly clipNorm: number;
  readonly noiseMultiplier: number;
  readonly samplingRate: number;
  readonly totalClients: number;
  readonly serverLr: number;
  private readonly rng: RandomSource;
  private readonly kernels: Kernels;

  constructor(options: DpFedAvgOptions, deps: DpFedAvgDeps = {}) {
    super();
    const o = parseContract(DpFedAvgOptions, options, "DP-FedAvg options");
    this.clipNorm = o.clipNorm;
    this.noiseMultiplier = o.noiseMultiplier;
    this.samplingRate = o.samplingRate;
    this.totalClients = o.totalClients;
    this.serverLr = o.serverLr;
    this.rng = deps.rng ?? new CryptoRandom();
    this.kernels = deps.kernels ?? new TypeScriptKernels();
    if (!this.rng.secure && !o.allowInsecureRandom) {
      throw new AggregationError(
        "INSECURE_RANDOM",
        "DP-FedAvg noise needs a cryptographic random source (set allowInsecureRandom only for tests)",
        { field: "rng" },
      );
    }
  }

  /** qN: the fixed denominator. */
  get expectedClients(): number {
    return this.samplingRate * this.totalClients;
  }

  /** The per-round parameters the privacy accountant needs. */
  get accounting(): DpRoundAccounting {
    return {
      noiseMultiplier: this.noiseMultiplier,
      samplingRate: this.samplingRate,
      clipNorm: this.clipNorm,
      expectedClients: this.expectedClients,
    };
  }

  protected openRound(ctx: RoundContext, generation: number): RoundAggregator {
    return new DpFedAvgRound(ctx, this.sequencer, generation, this, (buf) => this.addNoise(buf));
  }

  /** buf += N(0, (z·C)²) per coordinate. */
  private addNoise(buf: Float32Array): void {
    const std = this.noiseMultiplier * this.clipNorm;
    const words = new Uint32Array(gaussianNoiseWords(Math.min(buf.length, NOISE_CHUNK)));
    for (let off = 0; off < buf.length; off += NOISE_CHUNK) {
      const part = buf.subarray(off, Math.min(buf.length, off + NOISE_CHUNK));
      const w = words.subarray(0, gaussianNoiseWords(part.length));
      this.rng.fillUint32(w);
      this.kernels.addGaussianNoise(part, std, w);
    }
  }
}

/** The factor min(1, C/‖Δ‖) that scales a client delta into the L2 ball of radius C. */
export function clipFactor(norm: number, clipNorm: number): number {
  return norm > clipNorm ? clipNorm / norm : 1;
}

class DpFedAvgRound extends RoundBase {
  private readonly acc: DeltaAccumulator;

  constructor(
    ctx: RoundContext,
    sequencer: RoundSequencer,
    generation: number,
    private readonly strategy: DpFedAvg,
    private readonly addNoise: (buf: Float32Array) => void,
  ) {
    super(ctx, sequencer, generation, { reportMetrics: false });
    this.acc = new DeltaAccumulator(ctx.global);
  }

  protected accept(u: ClientUpdate): void {
    let sq = 0;
    for (const [name, t] of this.global) {
      const xd = t.data;
      const yd = u.weights.get(name)!.data;
      for (let i = 0; i < xd.length; i++) {
        const d = yd[i] - xd[i];
        sq += d * d;
      }
    }
    this.acc.add(u.weights, this.global, clipFactor(Math.sqrt(sq), this.strategy.clipNorm));
  }

  protected complete(): RoundOutcome {
    const s = this.strategy;
    if (this.count > s.totalClients) {
      // More participants than the population the accountant was told about: the guarantee would not hold.
      throw new AggregationError(
        "TOO_MANY_UPDATES",
        `DP-FedAvg round ${this.round} has ${this.count} updates but totalClients is ${s.totalClients}`,
      );
    }
    const factor = s.serverLr / s.expectedClients;
    const global: TensorMap = new Map();
    for (const [name, t] of this.global) {
      const sum = this.acc.sums.get(name)!;
      const noisy = Float32Array.from(sum);
      this.addNoise(noisy);
      const xd = t.data;
      for (let i = 0; i < noisy.length; i++) noisy[i] = xd[i] + factor * noisy[i];
      global.set(name, { shape: [...t.shape], data: noisy });
    }
    return { global, privacy: s.accounting };
  }
}

/**
 * Poisson client sampling for DP-FedAvg: each id joins independently with probability q, the
 * sampling the accountant's amplification assumes. Use a cryptographic source in production.
 */
export function sampleClients(ids: readonly string[], samplingRate: number, rng: RandomSource): string[] {
  if (!(samplingRate > 0 && samplingRate <= 1)) {
    throw new StrategyArgumentError("samplingRate must be in (0, 1]");
  }
  return ids.filter(() => rng.uniform() < samplingRate);
}
