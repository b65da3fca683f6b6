import { stat } from "node:fs/promises";
import { join } from "node:path";
import { ASSET_FILES } from "./cache-dir.js";
import type { AssetsFact } from "./doctor.js";

/** Are the hydrated assets in place? */
export async function inspectAssets(cacheDir: string): Promise<AssetsFact> {
  const missing: string[] = [];
  for (const name of Object.values(ASSET_FILES)) {
    try {
      if (!(await stat(join(cacheDir, name))).isFile()) missing.push(name);
    } catch {
      missing.push(name);
    }
  }
  if (missing.length) {
    return {
      status: "fail",
      detail: `${missing.join(", ")} missing in ${cacheDir}: run enclave runtime hydrate`,
    };
  }
  return { status: "pass", detail: `hydrated in ${cacheDir}` };
}
