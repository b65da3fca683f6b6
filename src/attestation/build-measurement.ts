import type { AttestationErrorCode } from "./errors.js";
import { createHash } from "node:crypto";
import { lstat, readdir, readFile } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { EnclaveError } from "../errors.js";

/**
 * A software "launch measurement" for simulated evidence: SHA-384 over the files of the running
 * build. It tells two simulated nodes apart by the code they run; it is not a hardware measurement
 * (the measured process could lie), which is why simulated evidence is rejected by default.
 *
 * Encoding, per regular file in byte-wise order of its POSIX relative path:
 *   "file" 0x00 path-utf8 0x00 size-u64be content
 * Symlinks and other non-regular files are skipped (a build has none).
 */
export interface BuildMeasurement {
  /** Lower-case hex SHA-384. */
  digest: string;
  /** What was measured: the compiled `dist/` or, when it is absent, the package sources. */
  source: "dist" | "package";
  files: number;
  bytes: number;
}

const MAX_FILES = 50_000;
const MAX_BYTES = 512 * 1024 * 1024;

/** The package root: two levels above this module (`src/attestation` or `dist/attestation`). */
export function packageRoot(): string {
  return fileURLToPath(new URL("../../", import.meta.url));
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function listFiles(dir: string, base: string, out: string[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  for (const e of entries) {
    const full = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name === "node_modules" || e.name === ".git") continue;
      await listFiles(full, base, out);
    } else if (e.isFile()) {
      out.push(relative(base, full).split(sep).join("/"));
      if (out.length > MAX_FILES) {
        throw new EnclaveError<AttestationErrorCode>(
          "BUILD_MEASUREMENT_FAILED",
          `more than ${MAX_FILES} files under the measured tree`,
        );
      }
    }
  }
}

/** Measure the files under `root` (relative paths include the top folder name, e.g. `dist/index.js`). */
export async function measureTree(
  root: string,
  tops: string[],
): Promise<{ digest: string; files: number; bytes: number }> {
  const paths: string[] = [];
  for (const top of tops) {
    const full = join(root, top);
    let st;
    try {
      st = await lstat(full);
    } catch {
      continue;
    }
    if (st.isDirectory()) await listFiles(full, root, paths);
    else if (st.isFile()) paths.push(top);
  }
  paths.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const h = createHash("sha384");
  let bytes = 0;
  for (const p of paths) {
    const content = await readFile(join(root, p));
    bytes += content.length;
    if (bytes > MAX_BYTES) {
      throw new EnclaveError<AttestationErrorCode>(
        "BUILD_MEASUREMENT_FAILED",
        `measured tree exceeds ${MAX_BYTES} bytes`,
      );
    }
    const size = Buffer.alloc(8);
    size.writeBigUInt64BE(BigInt(content.length));
    h.update("file\0").update(p, "utf8").update("\0").update(size).update(content);
  }
  return { digest: h.digest("hex"), files: paths.length, bytes };
}

const cache = new Map<string, Promise<BuildMeasurement>>();

/** Measure the running build once per process (per root). */
export function measureBuild(root: string = packageRoot()): Promise<BuildMeasurement> {
  let pending = cache.get(root);
  if (!pending) {
    pending = (async () => {
      if (await isDirectory(join(root, "dist"))) {
        return { source: "dist" as const, ...(await measureTree(root, ["dist"])) };
      }
      return { source: "package" as const, ...(await measureTree(root, ["package.json", "src", "bin"])) };
    })();
    cache.set(root, pending);
    pending.catch(() => cache.delete(root));
  }
  return pending;
}
