import { z } from "zod";
import { ValidationError, type FieldIssue } from "../errors.js";

/** Turn zod issues into field/rule pairs; zod's messages name the rule, never echo the value. */
export function issuesOf(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => {
    const path = issue.path.map(String).join(".");
    if (issue.code === "unrecognized_keys") {
      const keys = (issue as { keys?: string[] }).keys ?? [];
      return { path: path, rule: `unknown field(s) ${keys.map((k) => JSON.stringify(k)).join(", ")} not allowed` };
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
