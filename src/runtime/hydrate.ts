import { execFileSync } from "node:child_process";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { packageRoot as thisPackageRoot } from "../attestation/build-measurement.js";
import { ASSET_FILES } from "./cache-dir.js";
import { buildCpio } from "./cpio.js";
import { RuntimeError, RuntimeErrorCode } from "./errors.js";
import { GUEST_MODULE_LIST } from "./guest-image.js";
import { parseKernelImage } from "./kernel-image.js";
import { encodeManifest, sha256, type RuntimeManifest } from "./manifest.js";
import { collectRootfs } from "./rootfs-inputs.js";

export interface HydrateOptions {
  cacheDir: string;
  /** ELF vmlinux or bzImage; default: the newest `/boot/vmlinuz-*` of the host's kernel packages. */
  kernel?: string;
  /** Default: `/lib/modules/<the kernel's release>`. */
  modulesDir?: string;
  /** Default: `/bin/busybox` (Debian's busybox-static). */
  busybox?: string;
  /** Default: this process's Node.js binary. */
  node?: string;
  /** Default: this package. */
  packageRoot?: string;
}

export interface Hydrated {
  /** SHA-256 of manifest.json: the runtime measurement. */
  measurement: string;
  manifest: RuntimeManifest;
  kernelSource: string;
}

/** The newest host kernel image by release (`/boot/vmlinuz-<release>`), by version order. */
async function hostKernel(): Promise<string> {
  const names = (await readdir("/boot").catch(() => [] as string[])).filter((n) => n.startsWith("vmlinuz-"));
  if (!names.length) {
    throw new RuntimeError(
      RuntimeErrorCode.HYDRATE_INPUT_MISSING,
      "no kernel in /boot (Debian: apt-get install linux-image-cloud-amd64, or pass --kernel FILE)",
    );
  }
  names.sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  return join("/boot", names[names.length - 1]!);
}

async function readInput(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch {
    throw new RuntimeError(RuntimeErrorCode.HYDRATE_INPUT_MISSING, `${what} not found: ${path}`);
  }
}

/**
 * Build `rootfs.cpio` and `vmlinux` and write them with `manifest.json` into the cache directory.
 * The three files are written under temporary names and renamed into place, manifest last, so an
 * interrupted hydration never leaves a manifest describing other bytes.
 */
export async function hydrate(options: HydrateOptions): Promise<Hydrated> {
  const kernelSource = options.kernel ?? (await hostKernel());
  const kernel = parseKernelImage(await readInput(kernelSource, "kernel"), "kernel");
  const root = options.packageRoot ?? thisPackageRoot();
  const content = await collectRootfs({
    busybox: options.busybox ?? "/bin/busybox",
    node: options.node ?? process.execPath,
    packageRoot: root,
    modulesDir: options.modulesDir ?? join("/lib/modules", kernel.release),
  });
  const rootfs = buildCpio(content.entries);
  const pkg = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as {
    name: string;
    version: string;
  };
  const nodeVersion = execFileSync(options.node ?? process.execPath, ["--version"], {
    encoding: "utf8",
  }).trim();
  const modules = (content.files.get(GUEST_MODULE_LIST)?.toString("utf8") ?? "").split("\n").filter(Boolean);
  const manifest: RuntimeManifest = {
    format: "coreason-enclave-runtime/1",
    kernel: {
      file: "vmlinux",
      format: kernel.format,
      release: kernel.release,
      sha256: sha256(kernel.bytes),
      bytes: kernel.bytes.length,
    },
    rootfs: {
      file: "rootfs.cpio",
      sha256: sha256(rootfs),
      bytes: rootfs.length,
      entries: content.entries.length,
    },
    node: nodeVersion,
    package: { name: pkg.name, version: pkg.version },
    modules,
    files: Object.fromEntries([...content.files].map(([p, data]) => [p, sha256(data)])),
  };
  const manifestBytes = encodeManifest(manifest);
  await mkdir(options.cacheDir, { recursive: true });
  const tmp = (name: string) => join(options.cacheDir, `.${name}.partial`);
  const writes: [string, Buffer][] = [
    [ASSET_FILES.kernel, kernel.bytes],
    [ASSET_FILES.rootfs, rootfs],
    [ASSET_FILES.manifest, manifestBytes],
  ];
  try {
    for (const [name, bytes] of writes) await writeFile(tmp(name), bytes, { mode: 0o644 });
    await rm(join(options.cacheDir, ASSET_FILES.manifest), { force: true });
    for (const [name] of writes) await rename(tmp(name), join(options.cacheDir, name));
  } finally {
    for (const [name] of writes) await rm(tmp(name), { force: true });
  }
  return { measurement: sha256(manifestBytes), manifest, kernelSource };
}
