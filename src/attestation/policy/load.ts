import { readRegularFile } from "../../storage/regular-file.js";
import { parseContract } from "../../schemas/contract.js";
import { TrustPolicy } from "../../schemas/trust-policy.js";
import { parseConfigText } from "../../schemas/config-text.js";

const MAX_POLICY_BYTES = 1024 * 1024;

/** Validate a policy object; throws ValidationError naming each offending field and rule. */
export function parseTrustPolicy(input: unknown): TrustPolicy {
  return parseContract(TrustPolicy, input, "trust policy");
}

/** The policy that applies when none is given: every check, no measurement allow-lists. */
export function defaultTrustPolicy(): TrustPolicy {
  return parseTrustPolicy({});
}

/** Parse and validate policy text (JSON or YAML); errors name the field and rule. */
export function parseTrustPolicyText(text: string): TrustPolicy {
  return parseTrustPolicy(parseConfigText(text, "trust policy"));
}

/** Load a policy file (JSON or YAML). */
export async function loadTrustPolicy(path: string): Promise<TrustPolicy> {
  const bytes = await readRegularFile(path, "trust policy file", MAX_POLICY_BYTES, "POLICY_UNREADABLE");
  return parseTrustPolicyText(bytes.toString("utf8"));
}
