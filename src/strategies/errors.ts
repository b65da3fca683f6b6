import { EnclaveError } from "../errors.js";

export type AggregationErrorCode =
  // A client update was rejected; the round continues without it.
  | "UPDATE_INVALID_CLIENT_ID"
  | "UPDATE_DUPLICATE_CLIENT"
  | "UPDATE_INVALID_NUM_EXAMPLES"
  | "UPDATE_INVALID_METRIC"
  | "UPDATE_MISSING_CONTROL_DELTA"
  | "UPDATE_TENSOR_MISSING"
  | "UPDATE_TENSOR_UNEXPECTED"
  | "UPDATE_SHAPE_MISMATCH"
  | "UPDATE_DTYPE_MISMATCH"
  | "UPDATE_NOT_FINITE"
  // The round itself cannot proceed.
  | "ROUND_OUT_OF_ORDER"
  | "ROUND_FINISHED"
  | "ROUND_STALE"
  | "NO_UPDATES"
  | "TOO_FEW_UPDATES"
  | "TOO_MANY_UPDATES"
  | "GLOBAL_INVALID"
  | "STATE_INVALID"
  | "INSECURE_RANDOM";

/**
 * Aggregation failed or refused an input. `clientId`, `field` ("weights", "controlDelta", "metrics")
 * and `tensor` say where; messages carry names and sizes, never tensor values.
 */
export class AggregationError extends EnclaveError {
  declare readonly code: AggregationErrorCode;
  readonly clientId?: string;
  readonly field?: string;
  readonly tensor?: string;
  constructor(
    code: AggregationErrorCode,
    message: string,
    where: { clientId?: string; field?: string; tensor?: string; cause?: unknown } = {},
  ) {
    super(code, message, where.cause === undefined ? undefined : { cause: where.cause });
    if (where.clientId !== undefined) this.clientId = where.clientId;
    if (where.field !== undefined) this.field = where.field;
    if (where.tensor !== undefined) this.tensor = where.tensor;
  }
}
