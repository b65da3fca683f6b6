import { createHash } from "node:crypto";
import { sameShape, sizeOf, tensor, type TensorMap } from "../tensor/tensor.js";

/** What may leave an agent: the job model's tensors (name -> shape, float32) and these metrics. */
export interface ModelManifest {
  tensors: ReadonlyMap<string, readonly number[]>;
}

export const METRIC_WHITELIST = ["loss", "accuracy", "examples", "epsilon", "delta", "steps"] as const;
export type MetricName = (typeof METRIC_WHITELIST)[number];

export interface Drop {
  /** The offending key (a tensor or metric name, or the top-level field), never its value. */
  key: string;
  reason: string;
}

export interface SanitizedOutput {
  tensors: TensorMap;
  metrics: Partial<Record<MetricName, number>>;
  dropped: Drop[];
}

/**
 * Keys outside the model and the whitelist could themselves carry data, so drop records name
 * them only by a short digest; known names are printed as they are.
 */
function unknownKey(key: string): string {
  return `<unknown key sha256:${createHash("sha256").update(key).digest("hex").slice(0, 16)}>`;
}

function manifestOf(weights: TensorMap): ModelManifest {
  return { tensors: new Map([...weights].map(([k, t]) => [k, t.shape])) };
}

/**
 * The Airlock: the only way out of an agent. It copies through exactly the tensors whose
 * names, shapes and dtype (float32) match the job's model and whose values are all finite, plus
 * whitelisted finite numeric metrics. Everything else is dropped and recorded, without its value.
 */
export class Airlock {
  readonly manifest: ModelManifest;

  constructor(manifest: ModelManifest | TensorMap) {
    this.manifest = manifest instanceof Map ? manifestOf(manifest as TensorMap) : (manifest as ModelManifest);
  }

  sanitize(output: unknown): SanitizedOutput {
    const dropped: Drop[] = [];
    const tensors: TensorMap = new Map();
    const metrics: Partial<Record<MetricName, number>> = {};
    if (typeof output !== "object" || output === null) {
      return { tensors, metrics, dropped: [{ key: "(output)", reason: "not an object" }] };
    }
    for (const key of Object.keys(output)) {
      if (key !== "tensors" && key !== "metrics")
        dropped.push({ key: unknownKey(key), reason: "field not allowed out of the airlock" });
    }
    const o = output as { tensors?: unknown; metrics?: unknown };

    const entries: [string, unknown][] =
      o.tensors instanceof Map
        ? [...(o.tensors as Map<unknown, unknown>)].map(([k, v]) => [String(k), v])
        : typeof o.tensors === "object" && o.tensors !== null
          ? Object.entries(o.tensors)
          : [];
    if (o.tensors !== undefined && entries.length === 0 && !(o.tensors instanceof Map)) {
      dropped.push({ key: "tensors", reason: "not a tensor map" });
    }
    for (const [name, value] of entries) {
      const expected = this.manifest.tensors.get(name);
      if (!expected) {
        dropped.push({ key: unknownKey(name), reason: "tensor is not part of the job's model" });
        continue;
      }
      const t = value as { shape?: unknown; data?: unknown };
      if (!(t?.data instanceof Float32Array)) {
        dropped.push({ key: name, reason: "dtype is not float32" });
        continue;
      }
      if (
        !Array.isArray(t.shape) ||
        !sameShape(t.shape as number[], expected) ||
        t.data.length !== sizeOf(expected)
      ) {
        dropped.push({ key: name, reason: `shape does not match the model's [${expected.join(", ")}]` });
        continue;
      }
      let finite = true;
      for (let i = 0; i < t.data.length; i++) {
        if (!Number.isFinite(t.data[i])) {
          finite = false;
          break;
        }
      }
      if (!finite) {
        dropped.push({ key: name, reason: "contains non-finite values" });
        continue;
      }
      tensors.set(name, tensor(expected, t.data.slice()));
    }
    for (const name of this.manifest.tensors.keys()) {
      if (!tensors.has(name) && !dropped.some((d) => d.key === name))
        dropped.push({ key: name, reason: "missing" });
    }

    if (typeof o.metrics === "object" && o.metrics !== null) {
      for (const [name, value] of Object.entries(o.metrics)) {
        if (!(METRIC_WHITELIST as readonly string[]).includes(name)) {
          dropped.push({ key: unknownKey(name), reason: "metric is not whitelisted" });
        } else if (typeof value !== "number" || !Number.isFinite(value)) {
          dropped.push({ key: name, reason: "metric is not a finite number" });
        } else {
          metrics[name as MetricName] = value;
        }
      }
    } else if (o.metrics !== undefined) {
      dropped.push({ key: "metrics", reason: "not an object" });
    }
    return { tensors, metrics, dropped };
  }

  /** True when the output carries every model tensor: an update that can be aggregated. */
  isComplete(s: SanitizedOutput): boolean {
    return s.tensors.size === this.manifest.tensors.size;
  }
}
