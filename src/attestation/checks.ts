import { EnclaveError } from "../errors.js";

/**
 * `warn`: something outside what is signed that the vendors' own verifiers accept (unsigned
 * trailing bytes, unprotected header parameters): reported, never interpreted, and it neither
 * passes nor fails a verdict.
 */
export type CheckStatus = "pass" | "fail" | "skipped" | "warn";

/** One named check a verifier or the trust policy performed, with a human-readable reason. */
export interface CheckResult {
  name: string;
  status: CheckStatus;
  detail: string;
}

/** A check's outcome before it is named. */
export type Outcome = Omit<CheckResult, "name">;
export const pass = (detail: string): Outcome => ({ status: "pass", detail });
export const fail = (detail: string): Outcome => ({ status: "fail", detail });
export const skip = (detail: string): Outcome => ({ status: "skipped", detail });
export const warn = (detail: string): Outcome => ({ status: "warn", detail });

/**
 * The one trust rule for every kind: no check failed and at least one passed (a list of skips
 * and warnings proves nothing).
 */
export function allPassed(checks: readonly CheckResult[]): boolean {
  return checks.every((c) => c.status !== "fail") && checks.some((c) => c.status === "pass");
}

/**
 * The checks of one verification, in the order they ran. Every check is run and recorded: a
 * check that throws one of our typed errors fails with that error's message (which names fields,
 * never values), so a failure never hides the checks after it.
 */
export class CheckList {
  readonly checks: CheckResult[] = [];

  add(name: string, outcome: Outcome): void {
    this.checks.push({ name, ...outcome });
  }

  run(name: string, fn: () => Outcome): void {
    try {
      this.add(name, fn());
    } catch (error) {
      // Our typed errors name a structure and rule, never data; anything else stays opaque.
      this.add(name, fail(error instanceof EnclaveError ? error.message : "check could not be evaluated"));
    }
  }

  get trusted(): boolean {
    return allPassed(this.checks);
  }
}
