import { canonicalJson, type AuditEntry } from "./entry.js";

/** One entry as one line of the export (canonical JSON). */
export function entryLine(e: AuditEntry): string {
  return canonicalJson(e) + "\n";
}

/**
 * An exported chain, one entry a line. A line that is not JSON, or a last line without its
 * newline (a file cut short), stays in place as `null`, so the verifier names it by position.
 */
export function parseJsonl(text: string): unknown[] {
  const lines = text.split("\n");
  const cut = lines.pop() !== "";
  const out: unknown[] = lines.map((l) => {
    try {
      return JSON.parse(l) as unknown;
    } catch {
      return null;
    }
  });
  if (cut) out.push(null);
  return out;
}
