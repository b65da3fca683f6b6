import { homedir } from "node:os";
import { join } from "node:path";

/** The runtime contract's asset directory: `vmlinux`, `rootfs.cpio`, `manifest.json`, and optionally `firecracker`. */
export function defaultCacheDir(): string {
  return join(homedir(), ".enclave", "cache");
}

/** Where the contract looks for Firecracker, in order: the hydrator's cache, then the system path. */
export function firecrackerCandidates(cacheDir: string, root = "/"): string[] {
  return [join(cacheDir, "firecracker"), join(root, "usr/local/bin/firecracker")];
}

/** File names of the hydrated assets inside the cache directory. */
export const ASSET_FILES = {
  kernel: "vmlinux",
  rootfs: "rootfs.cpio",
  manifest: "manifest.json",
} as const;
