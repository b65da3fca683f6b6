import { allPassed, type CheckResult } from "../../src/attestation/checks.js";
import { parseTrustPolicy } from "../../src/attestation/policy/load.js";
import { validateEvidence, type ValidateOptions } from "../../src/attestation/policy/validate.js";
import type { VerificationResult } from "../../src/attestation/types.js";
import type { TrustPolicyInput } from "../../src/schemas/trust-policy.js";

/**
 * A verifier's result judged by the validator under a policy, as appraiseEvidence would (without
 * its kind and label pre-checks): the verifier's checks, then the policy's, by the one rule.
 */
export function judge(
  v: VerificationResult,
  policy: TrustPolicyInput = {},
  options: Partial<ValidateOptions> = {},
): { trusted: boolean; checks: CheckResult[] } {
  const at = options.at ?? new Date();
  const policyChecks = validateEvidence(v.kind, v, parseTrustPolicy(policy), {
    requireFreshness: false,
    ...options,
    at,
  });
  const checks = [...v.checks, ...policyChecks];
  return { trusted: v.trusted && allPassed(checks), checks };
}
