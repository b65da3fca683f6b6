import { readFile, stat } from "node:fs/promises";
import { parseDocument } from "yaml";
import { EnclaveError, ValidationError } from "../../errors.js";
import { parseContract } from "../../schemas/contract.js";
import { TrustPolicy } from "../../schemas/trust-policy.js";

const MAX_POLICY_BYTES = 1024 * 1024;

/** Validate a policy object; throws ValidationError naming each offending field and rule. */
export function parseTrustPolicy(input: unknown): TrustPolicy {
  return parseContract(TrustPolicy, input, "trust policy");
}

/** The policy that applies when none is given: every check, no measurement allow-lists. */
export function defaultTrustPolicy(): TrustPolicy {
  return parseTrustPolicy({});
}

/**
 * Parse policy text, JSON or YAML (JSON is YAML 1.2, and the YAML parser also refuses duplicate
 * keys, which JSON.parse would silently resolve to the last one).
 */
export function parseTrustPolicyText(text: string): TrustPolicy {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const where = e.linePos?.[0] ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : "somewhere";
    throw new ValidationError("trust policy", [
      { path: "", rule: `not valid JSON or YAML (${e.code} at ${where})` },
    ]);
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch {
    throw new ValidationError("trust policy", [
      { path: "", rule: "not valid JSON or YAML (aliases or structure)" },
    ]);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ValidationError("trust policy", [
      { path: "", rule: "must be a mapping (object) at the top level" },
    ]);
  }
  return parseTrustPolicy(value);
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
