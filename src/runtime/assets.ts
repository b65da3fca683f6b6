import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseConfigText } from "../schemas/config-text.js";
import { parseContract } from "../schemas/contract.js";
import { ASSET_FILES } from "./cache-dir.js";
import type { AssetsFact } from "./doctor.js";
import { RuntimeError, RuntimeErrorCode } from "./errors.js";
import { RuntimeManifest, sha256 } from "./manifest.js";

/** Hydrated assets whose bytes matched their manifest when loaded. */
export interface RuntimeAssets {
  kernel: string;
  rootfs: string;
  manifest: RuntimeManifest;
  /** SHA-256 of manifest.json: the runtime measurement. */
  measurement: string;
}

const invalid = (message: string) => new RuntimeError(RuntimeErrorCode.ASSETS_INVALID, message);

async function fileSha256(path: string): Promise<{ sha256: string; bytes: number }> {
  const h = createHash("sha256");
  let bytes = 0;
  for await (const chunk of createReadStream(path)) {
    h.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: h.digest("hex"), bytes };
}

/** Load and check the assets: the manifest parses, and the kernel and rootfs hash to its digests. */
export async function loadAssets(cacheDir: string): Promise<RuntimeAssets> {
  let text: Buffer;
  try {
    text = await readFile(join(cacheDir, ASSET_FILES.manifest));
  } catch {
    throw invalid(`${ASSET_FILES.manifest} missing in ${cacheDir}: run enclave runtime hydrate`);
  }
  let manifest: RuntimeManifest;
  try {
    manifest = parseContract(
      RuntimeManifest,
      parseConfigText(text.toString("utf8"), "runtime manifest"),
      "runtime manifest",
    );
  } catch (err) {
    throw new RuntimeError(
      RuntimeErrorCode.ASSETS_INVALID,
      `${cacheDir}/${ASSET_FILES.manifest}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  for (const part of [manifest.kernel, manifest.rootfs]) {
    const path = join(cacheDir, part.file);
    let got;
    try {
      got = await fileSha256(path);
    } catch {
      throw invalid(`${part.file} missing in ${cacheDir}: run enclave runtime hydrate`);
    }
    if (got.sha256 !== part.sha256 || got.bytes !== part.bytes) {
      throw invalid(
        `${part.file} in ${cacheDir} does not match manifest.json (sha256 differs): hydrate again`,
      );
    }
  }
  return {
    kernel: join(cacheDir, ASSET_FILES.kernel),
    rootfs: join(cacheDir, ASSET_FILES.rootfs),
    manifest,
    measurement: sha256(text),
  };
}

/** The assets as an explained check, for `runtime doctor`. */
export async function inspectAssets(cacheDir: string): Promise<AssetsFact> {
  try {
    const a = await loadAssets(cacheDir);
    return {
      status: "pass",
      detail: `hydrated in ${cacheDir}: kernel ${a.manifest.kernel.release} (${a.manifest.kernel.format}), measurement ${a.measurement}`,
      measurement: a.measurement,
    };
  } catch (err) {
    if (err instanceof RuntimeError) return { status: "fail", detail: err.message };
    throw err;
  }
}
