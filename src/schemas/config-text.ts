import { parseDocument } from "yaml";
import { ValidationError } from "../errors.js";

/**
 * Parse configuration text, JSON or YAML (JSON is YAML 1.2), into a plain mapping, before its
 * contract is applied. The YAML parser refuses duplicate keys (JSON.parse would silently keep the
 * last one); keys must be strings, and "__proto__" stays an ordinary own key. Errors name the line
 * and column of a syntax error, never a value.
 */
export function parseConfigText(text: string, what: string): Record<string, unknown> {
  // prettyErrors only adds linePos; the error's message (which quotes the source) is never used.
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const where = e.linePos?.[0] ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : "somewhere";
    throw new ValidationError(what, [{ path: "", rule: `not valid JSON or YAML (${e.code} at ${where})` }]);
  }
  let value: unknown;
  try {
    value = plain(doc.toJS({ maxAliasCount: 100, mapAsMap: true }), "", what);
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    throw new ValidationError(what, [{ path: "", rule: "not valid JSON or YAML (aliases or structure)" }]);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ValidationError(what, [{ path: "", rule: "must be a mapping (object) at the top level" }]);
  }
  return value as Record<string, unknown>;
}

/** YAML maps to plain objects; keys must be strings or numbers (YAML also allows maps as keys). */
function plain(value: unknown, path: string, what: string): unknown {
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of value) {
      if (typeof k !== "string" && typeof k !== "number") {
        throw new ValidationError(what, [{ path, rule: "keys must be strings" }]);
      }
      const key = String(k);
      // Own, enumerable data properties only: "__proto__" as a key must not reach the prototype.
      Object.defineProperty(out, key, {
        value: plain(v, path ? `${path}.${key}` : key, what),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
  if (Array.isArray(value)) return value.map((v, i) => plain(v, `${path}.${i}`, what));
  return value;
}
