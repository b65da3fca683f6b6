import { performance } from "node:perf_hooks";
import { EnclaveError } from "../../errors.js";
import { SeededRandom } from "../../random.js";
import { mutate } from "./mutate.js";

export interface FuzzTarget {
  name: string;
  /** Valid (or near-valid) inputs to mutate: real vectors. */
  seeds: readonly Uint8Array[];
  /** The code under test; may return anything or throw. */
  run(bytes: Uint8Array): unknown;
}

export interface FuzzFailure {
  /** What went wrong: an untyped exception, or an input that took too long. */
  kind: "untyped-exception" | "slow-input";
  /** Error class and message (never the input bytes, which are in `input`). */
  error: string;
  /** Hex of the offending input, for a regression test. */
  input: string;
}

export interface FuzzReport {
  target: string;
  seed: string;
  iterations: number;
  /** Inputs that returned normally / threw one of our typed errors. */
  accepted: number;
  typedErrors: number;
  /** Distinct typed error codes seen (a coverage hint). */
  codes: string[];
  failures: FuzzFailure[];
  slowestMs: number;
}

export interface FuzzOptions {
  /** Wall-clock budget. */
  budgetMs: number;
  seed?: string | number;
  /** Stop early after this many iterations. */
  maxIterations?: number;
  /** A single input taking longer than this counts as a hang. Default 2000 ms. */
  slowInputMs?: number;
  /** Stop after this many failures. Default 5. */
  maxFailures?: number;
}

/**
 * Bounded-time mutation fuzzing of one parser or verifier. The only acceptable outcomes per input
 * are a result or one of our typed errors (EnclaveError and its subclasses: EvidenceFormatError,
 * AttestationError, ValidationError, CertificateFormatError); a TypeError, RangeError or any other
 * exception is a failure, and so is an input that runs for longer than `slowInputMs`.
 */
export async function fuzz(target: FuzzTarget, options: FuzzOptions): Promise<FuzzReport> {
  const seed = String(options.seed ?? "coreason-enclave-fuzz");
  const rng = SeededRandom.derive(seed, target.name);
  const slow = options.slowInputMs ?? 2000;
  const maxFailures = options.maxFailures ?? 5;
  const report: FuzzReport = {
    target: target.name,
    seed,
    iterations: 0,
    accepted: 0,
    typedErrors: 0,
    codes: [],
    failures: [],
    slowestMs: 0,
  };
  const codes = new Set<string>();
  const start = performance.now();
  const deadline = start + options.budgetMs;
  // Each seed unmutated first: they must pass through cleanly too.
  const queue: Uint8Array[] = [...target.seeds];
  while (performance.now() < deadline) {
    if (options.maxIterations !== undefined && report.iterations >= options.maxIterations) break;
    if (report.failures.length >= maxFailures) break;
    const base = target.seeds[Math.floor(rng.uniform() * target.seeds.length)];
    const input = queue.shift() ?? mutate(base, rng, target.seeds);
    const t0 = performance.now();
    try {
      await target.run(input);
      report.accepted++;
    } catch (err) {
      if (err instanceof EnclaveError) {
        report.typedErrors++;
        codes.add(err.code);
      } else {
        report.failures.push({
          kind: "untyped-exception",
          error: `${(err as Error)?.name ?? typeof err}: ${(err as Error)?.message ?? String(err)}`,
          input: Buffer.from(input).toString("hex"),
        });
      }
    }
    const dt = performance.now() - t0;
    report.slowestMs = Math.max(report.slowestMs, dt);
    if (dt > slow) {
      report.failures.push({
        kind: "slow-input",
        error: `took ${Math.round(dt)} ms`,
        input: Buffer.from(input).toString("hex"),
      });
    }
    report.iterations++;
    // Yield now and then so a long budget does not starve the event loop (timers, test runner).
    if (report.iterations % 64 === 0) await new Promise((r) => setImmediate(r));
  }
  report.codes = [...codes].sort();
  return report;
}
