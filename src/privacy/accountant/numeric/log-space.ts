import { EnclaveError } from "../../../errors.js";
import { crExp, crLog } from "./correctly-rounded.js";

/** log(exp(x) + exp(y)), with Opacus's `_log_add` edge cases (-inf is the log of 0). */
export function logAdd(x: number, y: number): number {
  const a = Math.min(x, y);
  const b = Math.max(x, y);
  if (a === -Infinity) return b;
  return Math.log1p(crExp(a - b)) + b;
}

/**
 * log(exp(x) - exp(y)) for x >= y, with Opacus's `_log_sub` edge cases. Python's math.expm1
 * raises OverflowError past ~709.78, where Opacus then returns x; Math.expm1 gives Infinity there,
 * which is mapped to the same answer.
 */
export function logSub(x: number, y: number): number {
  if (x < y) {
    throw new EnclaveError("ACCOUNTANT_NUMERICAL_FAILURE", "log-space subtraction would be negative");
  }
  if (y === -Infinity) return x;
  if (x === y) return -Infinity;
  const d = Math.expm1(x - y);
  if (d === Infinity) return x;
  return crLog(d) + y;
}
