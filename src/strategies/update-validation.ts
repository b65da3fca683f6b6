import { assertFinite, assertSameLayout, displayName, TensorLayoutError } from "../tensor/tensor-math.js";
import type { TensorMap } from "../tensor/tensor.js";
import { AggregationError, type AggregationErrorCode } from "./errors.js";
import type { ClientUpdate } from "./types.js";

const MAX_CLIENT_ID_LENGTH = 256;
const MAX_METRICS = 64;
const METRIC_NAME = /^[A-Za-z0-9_.\-/]{1,64}$/;

const LAYOUT_CODES: Record<TensorLayoutError["code"], AggregationErrorCode> = {
  TENSOR_MISSING: "UPDATE_TENSOR_MISSING",
  TENSOR_UNEXPECTED: "UPDATE_TENSOR_UNEXPECTED",
  TENSOR_SHAPE_MISMATCH: "UPDATE_SHAPE_MISMATCH",
  TENSOR_DTYPE_MISMATCH: "UPDATE_DTYPE_MISMATCH",
  TENSOR_NOT_FINITE: "UPDATE_NOT_FINITE",
};

/** A client id fit for messages (quoted, truncated): ids come from the network. */
export function clientLabel(clientId: unknown): string {
  return typeof clientId === "string" ? displayName(clientId) : "(invalid id)";
}

export function validateClientId(update: ClientUpdate): void {
  const id: unknown = update?.clientId;
  if (typeof id !== "string" || id.length === 0 || id.length > MAX_CLIENT_ID_LENGTH) {
    throw new AggregationError(
      "UPDATE_INVALID_CLIENT_ID",
      `client update: clientId must be a non-empty string of at most ${MAX_CLIENT_ID_LENGTH} characters`,
      { field: "clientId" },
    );
  }
}

/** Same names, shapes and dtype as the global model, and every value finite. */
export function validateTensors(
  global: TensorMap,
  map: TensorMap | undefined,
  clientId: string,
  field: string,
): void {
  const what = `update from client ${clientLabel(clientId)}, ${field}`;
  try {
    if (map === undefined) {
      throw new AggregationError("UPDATE_TENSOR_MISSING", `${what}: missing`, { clientId, field });
    }
    assertSameLayout(global, map, what);
    assertFinite(map, what);
  } catch (err) {
    if (err instanceof TensorLayoutError) {
      throw new AggregationError(LAYOUT_CODES[err.code], err.message, {
        clientId,
        field,
        tensor: err.tensor,
        cause: err,
      });
    }
    throw err;
  }
}

/**
 * Checks everything a strategy relies on before the update touches any accumulator, so a
 * rejected update leaves the round exactly as it was.
 */
export function validateUpdate(global: TensorMap, update: ClientUpdate, needsControlDelta: boolean): void {
  validateClientId(update);
  const clientId = update.clientId;
  const who = `update from client ${clientLabel(clientId)}`;
  const n = update.numExamples;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new AggregationError(
      "UPDATE_INVALID_NUM_EXAMPLES",
      `${who}: numExamples must be a positive integer`,
      {
        clientId,
        field: "numExamples",
      },
    );
  }
  validateTensors(global, update.weights, clientId, "weights");
  if (needsControlDelta) {
    if (update.controlDelta === undefined) {
      throw new AggregationError(
        "UPDATE_MISSING_CONTROL_DELTA",
        `${who}: controlDelta is required by SCAFFOLD`,
        { clientId, field: "controlDelta" },
      );
    }
    validateTensors(global, update.controlDelta, clientId, "controlDelta");
  }
  if (update.metrics !== undefined) validateMetrics(update.metrics, clientId);
}

function validateMetrics(metrics: Readonly<Record<string, number>>, clientId: string): void {
  const who = `update from client ${clientLabel(clientId)}`;
  if (typeof metrics !== "object" || metrics === null || Array.isArray(metrics)) {
    throw new AggregationError("UPDATE_INVALID_METRIC", `${who}: metrics must be an object of numbers`, {
      clientId,
      field: "metrics",
    });
  }
  const keys = Object.keys(metrics);
  if (keys.length > MAX_METRICS) {
    throw new AggregationError("UPDATE_INVALID_METRIC", `${who}: at most ${MAX_METRICS} metrics`, {
      clientId,
      field: "metrics",
    });
  }
  for (const k of keys) {
    if (!METRIC_NAME.test(k)) {
      throw new AggregationError(
        "UPDATE_INVALID_METRIC",
        `${who}: metric names must match ${METRIC_NAME.source}`,
        { clientId, field: "metrics" },
      );
    }
    if (!Number.isFinite(metrics[k])) {
      throw new AggregationError(
        "UPDATE_INVALID_METRIC",
        `${who}: metric ${displayName(k)} must be a finite number`,
        {
          clientId,
          field: `metrics.${k}`,
        },
      );
    }
  }
}
