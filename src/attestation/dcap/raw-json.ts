import { ValidationError } from "../../errors.js";

/**
 * Returns the exact source text of a top-level member's value in a JSON object, e.g. the
 * `tcbInfo` object of a PCS response `{"tcbInfo":{...},"signature":"..."}`.
 *
 * Intel signs the bytes of that object as served, so the signature must be checked over the
 * original text; re-serialising parsed JSON could change spacing, key order or number format.
 * The whole document must still be valid JSON with no duplicate top-level keys.
 */
export function rawJsonMember(text: string, key: string, what: string): string {
  const fail = (rule: string): never => {
    throw new ValidationError(what, [{ path: key, rule }]);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return fail("document is not valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    fail("document is not a JSON object");

  let pos = 0;
  const ws = () => {
    while (pos < text.length && " \t\r\n".includes(text[pos])) pos++;
  };
  const skipString = () => {
    // Called at an opening quote; JSON.parse above has already validated escapes.
    pos++;
    while (text[pos] !== '"') pos += text[pos] === "\\" ? 2 : 1;
    pos++;
  };
  const skipValue = () => {
    ws();
    if (text[pos] === '"') return skipString();
    if (text[pos] === "{" || text[pos] === "[") {
      let depth = 0;
      do {
        const c = text[pos];
        if (c === '"') {
          skipString();
          continue;
        }
        if (c === "{" || c === "[") depth++;
        else if (c === "}" || c === "]") depth--;
        pos++;
      } while (depth > 0);
      return;
    }
    while (pos < text.length && !",}] \t\r\n".includes(text[pos])) pos++;
  };

  ws();
  pos++; // "{"
  const seen = new Set<string>();
  let found: string | undefined;
  for (;;) {
    ws();
    if (text[pos] === "}") break;
    const keyStart = pos;
    skipString();
    const name = JSON.parse(text.slice(keyStart, pos)) as string;
    if (seen.has(name)) fail(`duplicate top-level key`);
    seen.add(name);
    ws();
    pos++; // ":"
    ws();
    const valueStart = pos;
    skipValue();
    if (name === key) found = text.slice(valueStart, pos);
    ws();
    if (text[pos] === ",") pos++;
  }
  if (found === undefined) return fail("missing");
  return found;
}
