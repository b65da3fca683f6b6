import { EnclaveError } from "../errors.js";
import type { Dataset } from "./dataset.js";

/** Per-feature mean and standard deviation (population, ddof 0, as scikit-learn's StandardScaler). */
export interface Standardizer {
  mean: Float64Array;
  std: Float64Array;
}

/**
 * Fit on the train split only. Missing values (NaN from nullable columns; also +-Infinity from columns that allow them) are skipped; a
 * feature with zero spread (or no values) gets std 1 so it maps to 0 instead of dividing by 0.
 */
export function fitStandardizer(ds: Dataset): Standardizer {
  const d = ds.numFeatures;
  const sum = new Float64Array(d);
  const count = new Float64Array(d);
  for (let r = 0; r < ds.rows; r++) {
    for (let j = 0, o = r * d; j < d; j++) {
      const v = ds.features[o + j];
      if (Number.isFinite(v)) {
        sum[j] += v;
        count[j]++;
      }
    }
  }
  const mean = new Float64Array(d);
  for (let j = 0; j < d; j++) mean[j] = count[j] > 0 ? sum[j] / count[j] : 0;
  // Second pass on centred values: the one-pass formula loses precision when |mean| >> std.
  const sq = new Float64Array(d);
  for (let r = 0; r < ds.rows; r++) {
    for (let j = 0, o = r * d; j < d; j++) {
      const v = ds.features[o + j];
      if (Number.isFinite(v)) sq[j] += (v - mean[j]) * (v - mean[j]);
    }
  }
  const std = new Float64Array(d);
  for (let j = 0; j < d; j++) {
    const s = count[j] > 0 ? Math.sqrt(sq[j] / count[j]) : 0;
    std[j] = s > 0 && Number.isFinite(s) ? s : 1;
  }
  return { mean, std };
}

/** (x - mean) / std for every feature, into a new dataset; missing and non-finite values become 0 (the train mean). */
export function applyStandardizer(ds: Dataset, st: Standardizer): Dataset {
  const d = ds.numFeatures;
  if (st.mean.length !== d || st.std.length !== d) {
    throw new EnclaveError("STANDARDIZER_MISMATCH", `standardizer has ${st.mean.length} features, dataset has ${d}`);
  }
  const out = new Float32Array(ds.features.length);
  for (let r = 0; r < ds.rows; r++) {
    for (let j = 0, o = r * d; j < d; j++) {
      const v = ds.features[o + j];
      out[o + j] = Number.isFinite(v) ? (v - st.mean[j]) / st.std[j] : 0;
    }
  }
  return { ...ds, features: out };
}
