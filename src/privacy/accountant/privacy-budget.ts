/**
 * One-shot budget questions: the epsilon of a planned run, and the noise multiplier that meets a
 * target epsilon (Opacus `get_noise_multiplier`).
 */
import { ValidationError, type FieldIssue } from "../../errors.js";
import {
  AccountantError,
  MAX_NOISE_MULTIPLIER,
  isAccountantName,
  validateDelta,
  type Accountant,
  type AccountantName,
  type AccountantSegment,
} from "./accountant.js";
import { PrvAccountant, type PrvOptions } from "./prv-accountant.js";
import { RdpAccountant } from "./rdp-accountant.js";

/** A fresh accountant by name, optionally resuming from a stored history. */
export function createAccountant(
  name: AccountantName,
  history: readonly AccountantSegment[] = [],
  options: PrvOptions = {},
): Accountant {
  if (name === "rdp") return RdpAccountant.fromHistory(history);
  if (name === "prv") return PrvAccountant.fromHistory(history, options);
  throw new ValidationError("accountant", [{ path: "accountant", rule: 'must be "rdp" or "prv"' }]);
}

export interface ComputeEpsilonInput {
  accountant: AccountantName;
  sampleRate: number;
  noiseMultiplier: number;
  steps: number;
  delta: number;
}

export interface EpsilonResult {
  epsilon: number;
  /** Optimal RDP order (RDP only; 0 when no step was taken, as in Opacus). */
  order?: number;
}

function accountantIssue(x: unknown): FieldIssue | null {
  return isAccountantName(x) ? null : { path: "accountant", rule: 'must be "rdp" or "prv"' };
}

/** Epsilon after `steps` steps at (σ, q), by the named accountant. */
export function computeEpsilon(input: ComputeEpsilonInput): EpsilonResult {
  const bad = accountantIssue(input?.accountant);
  if (bad) throw new ValidationError("epsilon query", [bad]);
  validateDelta(input.delta);
  const segment = {
    noiseMultiplier: input.noiseMultiplier,
    sampleRate: input.sampleRate,
    steps: input.steps,
  };
  if (input.accountant === "rdp") {
    const acc = RdpAccountant.fromHistory([segment]);
    const spent = acc.getPrivacySpent(input.delta);
    return { epsilon: spent.epsilon, order: spent.order };
  }
  return { epsilon: PrvAccountant.fromHistory([segment]).getEpsilon(input.delta) };
}

export interface NoiseMultiplierInput {
  accountant?: AccountantName;
  targetEpsilon: number;
  delta: number;
  sampleRate: number;
  /** Exactly one of epochs and steps; epochs become int(epochs / sampleRate) steps. */
  epochs?: number;
  steps?: number;
  epsilonTolerance?: number;
}

/**
 * The noise multiplier whose epsilon lies in (target - tolerance, target], by Opacus's search:
 * double σ from 10 (20 is the first tried) until ε(σ) <= target, then bisect on [0, σ_high] until
 * target - ε(σ_high) <= tolerance, and return σ_high.
 */
export function getNoiseMultiplier(input: NoiseMultiplierInput): number {
  const name = input.accountant ?? "rdp";
  const tolerance = input.epsilonTolerance ?? 0.01;
  const issues: FieldIssue[] = [];
  const a = accountantIssue(name);
  if (a) issues.push(a);
  if (!(
    typeof input.targetEpsilon === "number" &&
    input.targetEpsilon > 0 &&
    Number.isFinite(input.targetEpsilon)
  )) {
    issues.push({ path: "targetEpsilon", rule: "must be a finite number > 0" });
  }
  if (!(typeof input.delta === "number" && input.delta > 0 && input.delta < 1)) {
    issues.push({ path: "delta", rule: "must be a number in (0, 1)" });
  }
  const q = input.sampleRate;
  if (!(typeof q === "number" && q >= 0 && q <= 1))
    issues.push({ path: "sampleRate", rule: "must be a finite number in [0, 1]" });
  if (!(typeof tolerance === "number" && tolerance > 0 && Number.isFinite(tolerance))) {
    issues.push({ path: "epsilonTolerance", rule: "must be a finite number > 0" });
  }
  if ((input.epochs === undefined) === (input.steps === undefined)) {
    issues.push({ path: "epochs", rule: "give exactly one of epochs and steps" });
  } else if (input.epochs !== undefined) {
    if (!(typeof input.epochs === "number" && input.epochs > 0 && Number.isFinite(input.epochs))) {
      issues.push({ path: "epochs", rule: "must be a finite number > 0" });
    } else if (!(q > 0)) {
      issues.push({ path: "sampleRate", rule: "must be > 0 when epochs are given" });
    }
  } else if (!(typeof input.steps === "number" && Number.isSafeInteger(input.steps) && input.steps >= 0)) {
    issues.push({ path: "steps", rule: "must be an integer >= 0" });
  }
  if (issues.length > 0) throw new ValidationError("noise multiplier query", issues);

  const steps = input.steps ?? Math.trunc(input.epochs! / q);
  if (!Number.isSafeInteger(steps)) {
    throw new ValidationError("noise multiplier query", [
      { path: "epochs", rule: "epochs / sampleRate is too large" },
    ]);
  }
  const target = input.targetEpsilon;
  const epsilonAt = (sigma: number) =>
    createAccountant(name, [{ noiseMultiplier: sigma, sampleRate: q, steps }]).getEpsilon(input.delta);

  let epsHigh = Infinity;
  let sigmaLow = 0;
  let sigmaHigh = 10;
  while (epsHigh > target) {
    sigmaHigh = 2 * sigmaHigh;
    // Opacus evaluates ε at the first σ past MAX_SIGMA and then gives up: the accountants refuse it.
    if (sigmaHigh > MAX_NOISE_MULTIPLIER) {
      throw new AccountantError(
        "PRIVACY_TARGET_UNREACHABLE",
        "the privacy budget is too low for any noise multiplier",
      );
    }
    epsHigh = epsilonAt(sigmaHigh);
  }
  while (target - epsHigh > tolerance) {
    const sigma = (sigmaLow + sigmaHigh) / 2;
    const eps = epsilonAt(sigma);
    if (eps < target) {
      sigmaHigh = sigma;
      epsHigh = eps;
    } else {
      sigmaLow = sigma;
    }
  }
  return sigmaHigh;
}
