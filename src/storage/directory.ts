import { mkdirSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { EnclaveError } from "../errors.js";

/**
 * `mkdir -p` one segment at a time from the nearest existing ancestor. Node's recursive mkdirSync
 * retries forever where mkdir answers ENOENT under an existing directory (`/proc/x`); here every
 * failure is a typed error naming the flag and the code, never the path's contents.
 */
export function createDirectory(dir: string, what: string): void {
  const missing: string[] = [];
  let at = dir;
  for (;;) {
    try {
      if (!statSync(at).isDirectory())
        throw new EnclaveError("OUTPUT_NOT_WRITABLE", `${what}: a parent of the path is not a directory`);
      break;
    } catch (err) {
      if (err instanceof EnclaveError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" || dirname(at) === at)
        throw new EnclaveError("OUTPUT_NOT_WRITABLE", `${what}: cannot be created (${code ?? "error"})`);
      missing.unshift(at);
      at = dirname(at);
    }
  }
  for (const d of missing) {
    try {
      mkdirSync(d);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "EEXIST")
        throw new EnclaveError("OUTPUT_NOT_WRITABLE", `${what}: cannot be created (${code ?? "error"})`);
    }
  }
}
