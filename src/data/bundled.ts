import { fileURLToPath } from "node:url";

/**
 * The demo data shipped in the package (`data/`, also `coreason-enclave/data/*`), resolved from the
 * installed package so it works from any directory: the default of `enclave simulate`.
 */
export const BUNDLED_DATASET = fileURLToPath(new URL("../../data/breast-cancer-wisconsin.csv", import.meta.url));
