import { createHash } from "node:crypto";
import type { Dataset } from "./dataset.js";

/** Prefix of a records identity, so ledger keys of this kind never collide with older kinds. */
export const RECORDS_IDENTITY_PREFIX = "records:v1:";

/**
 * The canonical identity of a dataset's records, the key its privacy budget is recorded under.
 *
 * It is computed from the parsed, schema-typed records only: each record is its features (float32,
 * in the order of their sorted names, -0 as 0 and every NaN as one NaN) and its class name; the
 * identity is the SHA-256 of the sorted feature and class names and the sorted multiset of record
 * digests. So it does not change with the file's encoding, line endings, compression, name, the id
 * it is reached by, column order, or row order; any added, removed or changed record (or a record
 * given twice) changes it. docs/privacy.md says what counts as the same data.
 */
export function recordsIdentity(ds: Dataset): string {
  const d = ds.numFeatures;
  const order = [...ds.featureNames.keys()].sort((a, b) => cmp(ds.featureNames[a], ds.featureNames[b]));
  const row = new Float32Array(d);
  const rowBytes = new Uint8Array(row.buffer);
  const digests: string[] = new Array(ds.rows);
  for (let r = 0; r < ds.rows; r++) {
    const base = r * d;
    for (let j = 0; j < d; j++) {
      const v = ds.features[base + order[j]];
      row[j] = v === 0 ? 0 : Number.isNaN(v) ? NaN : v;
    }
    digests[r] = createHash("sha256")
      .update(rowBytes)
      .update("\u0000")
      .update(ds.classNames[ds.labels[r]] ?? "")
      .digest("hex");
  }
  digests.sort();
  const h = createHash("sha256").update(
    JSON.stringify({
      features: order.map((j) => ds.featureNames[j]),
      classes: [...ds.classNames].sort(cmp),
      rows: ds.rows,
    }),
  );
  for (const x of digests) h.update(x);
  return RECORDS_IDENTITY_PREFIX + h.digest("hex");
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
