import { readFile, stat } from "node:fs/promises";
import { EnclaveError } from "../../errors.js";
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
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (err) {
    throw new EnclaveError(
      "POLICY_UNREADABLE",
      `trust policy file cannot be read (${(err as { code?: string }).code ?? "error"})`,
    );
  }
  if (size > MAX_POLICY_BYTES) {
    throw new EnclaveError("POLICY_UNREADABLE", `trust policy file exceeds ${MAX_POLICY_BYTES} bytes`);
  }
  const text = await readFile(path, "utf8");
  return parseTrustPolicyText(text);
}
