import { EnclaveError } from "../errors.js";
import type { Network } from "../model/network.js";
import type { Parameter } from "../model/parameter.js";
import { DpSgdGradient, meanGradient } from "../privacy/dp-sgd.js";
import type { PrivacyGuard } from "../privacy/guard.js";
import { permutation, type RandomSource } from "../random.js";
import type { Kernels } from "../tensor/kernels.js";
import type { Optimizer } from "./optimizer.js";

/** Rows of features (row-major) and integer labels. */
export interface Examples {
  features: Float32Array;
  labels: Int32Array;
  rows: number;
  numFeatures: number;
}

export interface DpSettings {
  noiseMultiplier: number;
  maxGradNorm: number;
  guard: PrivacyGuard;
  /** Noise source; the OS CSPRNG in production. */
  noise: RandomSource;
}

export interface TrainOptions {
  epochs: number;
  /** Expected batch size: DP uses Poisson sampling with q = 1/ceil(N/B), as Opacus does. */
  batchSize: number;
  optimizer: Optimizer;
  /** Omit for the non-private baseline (shuffled fixed-size batches through the same engine). */
  dp?: DpSettings;
  /** Sampling randomness (Poisson inclusion or shuffling). */
  sampling: RandomSource;
  /** Stop after this many steps (e.g. a federated round's local steps). */
  maxSteps?: number;
  /** Post-processing of the (noised) gradient before the optimizer: FedProx, SCAFFOLD corrections. */
  gradientHook?: (params: readonly Parameter[]) => void;
  onStep?: (info: {
    step: number;
    totalSteps: number;
    epoch: number;
    batchRows: number;
    loss: number;
  }) => void;
}

export interface TrainResult {
  steps: number;
  examplesProcessed: number;
  meanLoss: number;
  /** Set when training stopped early: e.g. PRIVACY_BUDGET_EXHAUSTED. The model is the last in-budget one. */
  stoppedBy?: { code: string; message: string };
}

/** Opacus' sampling: q = 1/ceil(N/B), ceil(N/B) steps per epoch, expected batch int(N·q). */
export function poissonSchedule(
  n: number,
  batchSize: number,
): { sampleRate: number; stepsPerEpoch: number; expectedBatchSize: number } {
  const batches = Math.ceil(n / batchSize);
  const sampleRate = 1 / batches;
  return {
    sampleRate,
    stepsPerEpoch: Math.floor(1 / sampleRate),
    expectedBatchSize: Math.max(1, Math.floor(n * sampleRate)),
  };
}

/**
 * Poisson sampling: every index in [0, n) is included independently with probability q.
 * Drawn as i.i.d. geometric gaps between included indices (Devroye), so a step costs O(batch)
 * random draws instead of O(n); the resulting distribution is the same.
 */
export function poissonSample(n: number, q: number, rng: RandomSource, out: number[]): void {
  out.length = 0;
  if (q <= 0) return;
  if (q >= 1) {
    for (let i = 0; i < n; i++) out.push(i);
    return;
  }
  const logMiss = Math.log1p(-q);
  // Gap G >= 1 with P(G = g) = (1-q)^(g-1) q:  G = 1 + floor(ln U / ln(1-q)), U uniform in (0, 1].
  for (let i = -1; ;) {
    i += 1 + Math.floor(Math.log(1 - rng.uniform()) / logMiss);
    if (i >= n) return;
    out.push(i);
  }
}

/** Trains `net` in place with DP-SGD (when `dp` is given) or the non-private path. */
export async function train(net: Network, k: Kernels, data: Examples, o: TrainOptions): Promise<TrainResult> {
  if (data.rows === 0) throw new EnclaveError("EMPTY_DATASET", "cannot train on an empty dataset");
  const d = data.numFeatures;
  const { sampleRate, stepsPerEpoch, expectedBatchSize } = poissonSchedule(data.rows, o.batchSize);
  const totalSteps = Math.min(o.maxSteps ?? Infinity, o.epochs * stepsPerEpoch);
  const dpGrad = o.dp ? new DpSgdGradient(net, k, o.dp.noise) : null;
  let bx = new Float32Array(o.batchSize * 2 * d);
  let by = new Int32Array(o.batchSize * 2);
  const idx: number[] = [];
  let order = permutation(data.rows, o.sampling);
  let cursor = 0;
  let steps = 0;
  let examples = 0;
  let lossSum = 0;
  try {
    for (let step = 0; step < totalSteps; step++) {
      const epoch = Math.floor(step / stepsPerEpoch);
      idx.length = 0;
      if (o.dp) {
        poissonSample(data.rows, sampleRate, o.sampling, idx);
      } else {
        for (let i = 0; i < o.batchSize && i < data.rows; i++) {
          if (cursor === data.rows) {
            order = permutation(data.rows, o.sampling);
            cursor = 0;
          }
          idx.push(order[cursor++]);
        }
      }
      const rows = idx.length;
      if (rows > by.length) {
        bx = new Float32Array(rows * 2 * d);
        by = new Int32Array(rows * 2);
      }
      for (let r = 0; r < rows; r++) {
        bx.set(data.features.subarray(idx[r] * d, (idx[r] + 1) * d), r * d);
        by[r] = data.labels[idx[r]];
      }
      let stepLoss: number;
      if (o.dp && dpGrad) {
        // The guard throws before the step is taken when it would overspend the budget.
        const pending = o.dp.guard.beforeStep(sampleRate);
        if (pending) await pending;
        stepLoss = dpGrad.compute(bx, by, rows, {
          maxGradNorm: o.dp.maxGradNorm,
          noiseMultiplier: o.dp.noiseMultiplier,
          expectedBatchSize,
        }).lossSum;
      } else {
        stepLoss = meanGradient(net, bx, by, rows).lossSum;
      }
      o.gradientHook?.(net.params);
      o.optimizer.step(net.params);
      steps++;
      examples += rows;
      lossSum += stepLoss;
      o.onStep?.({ step: steps, totalSteps, epoch, batchRows: rows, loss: rows ? stepLoss / rows : NaN });
    }
  } catch (err) {
    if (err instanceof EnclaveError && err.code === "PRIVACY_BUDGET_EXHAUSTED") {
      return {
        steps,
        examplesProcessed: examples,
        meanLoss: examples ? lossSum / examples : NaN,
        stoppedBy: { code: err.code, message: err.message },
      };
    }
    throw err;
  } finally {
    await o.dp?.guard.settle();
  }
  return { steps, examplesProcessed: examples, meanLoss: examples ? lossSum / examples : NaN };
}

/** Accuracy and mean loss on a held-out set (evaluation mode, in chunks). */
export function evaluate(net: Network, data: Examples, chunk = 1024): { accuracy: number; loss: number } {
  let correct = 0;
  let loss = 0;
  const d = data.numFeatures;
  for (let s = 0; s < data.rows; s += chunk) {
    const rows = Math.min(chunk, data.rows - s);
    const x = data.features.subarray(s * d, (s + rows) * d);
    const y = data.labels.subarray(s, s + rows);
    const logits = net.forward(x, rows, false);
    const { losses } = net.lossAndGrad(logits, y, rows);
    for (let i = 0; i < rows; i++) loss += losses[i];
    const pred = net.classify(logits, rows);
    for (let i = 0; i < rows; i++) if (pred[i] === y[i]) correct++;
  }
  return { accuracy: data.rows ? correct / data.rows : NaN, loss: data.rows ? loss / data.rows : NaN };
}
