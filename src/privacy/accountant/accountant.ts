/**
 * The Accountant interface: it steps and reports epsilon. Shared by the RDP and PRV accountants,
 * with the input validation both apply at their boundary.
 */
import { EnclaveError, ValidationError, type FieldIssue } from "../../errors.js";

export type AccountantName = "rdp" | "prv";
export const ACCOUNTANT_NAMES: readonly AccountantName[] = ["rdp", "prv"];

/** `steps` optimizer steps of the Poisson-subsampled Gaussian at one (σ, q). */
export interface AccountantSegment {
  readonly noiseMultiplier: number;
  readonly sampleRate: number;
  readonly steps: number;
}

export interface Accountant {
  readonly mechanism: AccountantName;
  /** Steps taken so far; consecutive steps at identical (σ, q) are merged, as Opacus does. */
  readonly history: readonly AccountantSegment[];
  /** Record `count` steps at noise multiplier σ and sample rate q. */
  step(noiseMultiplier: number, sampleRate: number, count?: number): void;
  /** Epsilon spent so far at `delta` (0 for an empty history). */
  getEpsilon(delta: number): number;
  /** Epsilon the history plus `next` would reach, without recording `next`. */
  epsilonAfter(next: AccountantSegment, delta: number): number;
}

/** A numerical method could not produce a trustworthy epsilon (callers must fail closed). */
export class AccountantError extends EnclaveError {}

export function isAccountantName(x: unknown): x is AccountantName {
  return x === "rdp" || x === "prv";
}

function sampleRateIssue(path: string, q: unknown): FieldIssue | null {
  return typeof q === "number" && Number.isFinite(q) && q >= 0 && q <= 1
    ? null
    : { path, rule: "must be a finite number in [0, 1]" };
}

/**
 * Opacus's MAX_SIGMA, and the largest noise multiplier the accountants take: past it a step spends
 * nothing measurable, and the PRV quadrature would overflow (σ² = ∞ at 1e308) instead of answering.
 */
export const MAX_NOISE_MULTIPLIER = 1e6;

function noiseIssue(path: string, sigma: unknown): FieldIssue | null {
  return typeof sigma === "number" && Number.isFinite(sigma) && sigma >= 0 && sigma <= MAX_NOISE_MULTIPLIER
    ? null
    : { path, rule: `must be a number in [0, ${MAX_NOISE_MULTIPLIER}]` };
}

function stepsIssue(path: string, steps: unknown): FieldIssue | null {
  return typeof steps === "number" && Number.isSafeInteger(steps) && steps >= 0
    ? null
    : { path, rule: "must be an integer >= 0" };
}

function collect(what: string, issues: (FieldIssue | null)[]): void {
  const found = issues.filter((i): i is FieldIssue => i !== null);
  if (found.length > 0) throw new ValidationError(what, found);
}

export function validateStep(noiseMultiplier: unknown, sampleRate: unknown, count: unknown): void {
  collect("accountant step", [
    noiseIssue("noiseMultiplier", noiseMultiplier),
    sampleRateIssue("sampleRate", sampleRate),
    stepsIssue("count", count),
  ]);
}

export function validateSegment(seg: unknown, path: string): void {
  if (typeof seg !== "object" || seg === null) {
    throw new ValidationError("accountant history", [{ path, rule: "must be an object" }]);
  }
  const s = seg as Record<string, unknown>;
  collect("accountant history", [
    noiseIssue(`${path}.noiseMultiplier`, s.noiseMultiplier),
    sampleRateIssue(`${path}.sampleRate`, s.sampleRate),
    stepsIssue(`${path}.steps`, s.steps),
  ]);
}

export function validateDelta(delta: unknown, path = "delta"): void {
  collect("privacy query", [
    typeof delta === "number" && delta > 0 && delta < 1 ? null : { path, rule: "must be a number in (0, 1)" },
  ]);
}

/** Validate a stored history and merge consecutive identical (σ, q); zero-step segments spend nothing. */
export function normaliseHistory(history: readonly AccountantSegment[]): AccountantSegment[] {
  if (!Array.isArray(history)) {
    throw new ValidationError("accountant history", [{ path: "history", rule: "must be an array" }]);
  }
  const out: AccountantSegment[] = [];
  history.forEach((seg, i) => {
    validateSegment(seg, `history[${i}]`);
    appendMerged(out, seg.noiseMultiplier, seg.sampleRate, seg.steps);
  });
  return out;
}

/** Opacus's merge rule: the same (σ, q) as the last segment extends it, anything else starts a new one. */
export function appendMerged(
  history: AccountantSegment[],
  noiseMultiplier: number,
  sampleRate: number,
  steps: number,
): void {
  if (steps === 0) return;
  const last = history[history.length - 1];
  if (last && last.noiseMultiplier === noiseMultiplier && last.sampleRate === sampleRate) {
    if (!Number.isSafeInteger(last.steps + steps)) {
      throw new ValidationError("accountant history", [
        { path: "steps", rule: "total must stay an exact integer" },
      ]);
    }
    history[history.length - 1] = Object.freeze({ noiseMultiplier, sampleRate, steps: last.steps + steps });
  } else {
    history.push(Object.freeze({ noiseMultiplier, sampleRate, steps }));
  }
}
