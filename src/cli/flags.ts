import { InvalidArgumentError } from "commander";

/**
 * Commander argument parsers that name the rule; commander prefixes the flag, so errors read
 * `option '--epochs <n>' argument '0' is invalid. must be an integer >= 1`.
 */
export function numberFlag(rule: { integer?: boolean; min?: number; max?: number; exclusiveMin?: boolean }) {
  return (value: string): number => {
    const n = Number(value);
    const kind = rule.integer ? "an integer" : "a number";
    const bounds = [
      rule.min !== undefined ? `${rule.exclusiveMin ? ">" : ">="} ${rule.min}` : "",
      rule.max !== undefined ? `<= ${rule.max}` : "",
    ]
      .filter(Boolean)
      .join(" and ");
    const fail = () => {
      throw new InvalidArgumentError(`must be ${kind}${bounds ? " " + bounds : ""}`);
    };
    if (value.trim() === "" || !Number.isFinite(n)) fail();
    if (rule.integer && !Number.isInteger(n)) fail();
    if (rule.min !== undefined && (rule.exclusiveMin ? n <= rule.min : n < rule.min)) fail();
    if (rule.max !== undefined && n > rule.max) fail();
    return n;
  };
}

export function choiceFlag<T extends string>(choices: readonly T[]) {
  return (value: string): T => {
    if (!(choices as readonly string[]).includes(value))
      throw new InvalidArgumentError(`must be one of ${choices.join(", ")}`);
    return value as T;
  };
}

/** Comma-separated positive integers, e.g. `--hidden 64,32`. */
export function intListFlag(value: string): number[] {
  const parts = value.split(",").map((s) => Number(s.trim()));
  if (parts.length === 0 || parts.some((n) => !Number.isInteger(n) || n < 1 || n > 65536)) {
    throw new InvalidArgumentError("must be comma-separated integers in 1..65536, e.g. 64,32");
  }
  return parts;
}
