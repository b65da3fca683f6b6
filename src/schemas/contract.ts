import { z } from "zod";
import { ValidationError, type FieldIssue } from "../errors.js";

/** Turn zod issues into field/rule pairs; zod's messages name the rule, never echo the value. */
export function issuesOf(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => {
    const path = issue.path.map(String).join(".");
    if (issue.code === "unrecognized_keys") {
      const keys = (issue as { keys?: string[] }).keys ?? [];
      // A key is input too: bounded, so a huge or hostile key is never echoed whole.
      const shown = keys.slice(0, 5).map((k) => JSON.stringify(k.length > 40 ? `${k.slice(0, 40)}...` : k));
      const more = keys.length > 5 ? ` and ${keys.length - 5} more` : "";
      return { path: path, rule: `unknown field(s) ${shown.join(", ")}${more} not allowed` };
    }
    return { path, rule: issue.message };
  });
}

/** Validate `input` against `schema`; throws ValidationError naming each field and rule. */
export function parseContract<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw new ValidationError(what, issuesOf(result.error));
  return result.data;
}
