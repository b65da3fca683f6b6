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
    value = plain(doc.toJS({ maxAliasCount: 100, mapAsMap: true }), "");
  } catch (err) {
    if (err instanceof ValidationError) throw err;
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

/** YAML maps to plain objects; keys must be strings or numbers (YAML also allows maps as keys). */
function plain(value: unknown, path: string): unknown {
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of value) {
      if (typeof k !== "string" && typeof k !== "number") {
        throw new ValidationError("trust policy", [{ path, rule: "keys must be strings" }]);
      }
      const key = String(k);
      // Own, enumerable data properties only: "__proto__" as a key must not reach the prototype.
      Object.defineProperty(out, key, {
        value: plain(v, path ? `${path}.${key}` : key),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
  if (Array.isArray(value)) return value.map((v, i) => plain(v, `${path}.${i}`));
  return value;
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
