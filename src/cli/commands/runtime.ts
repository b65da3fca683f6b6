import { resolve } from "node:path";
import type { Command } from "commander";
import { inspectAssets } from "../../runtime/assets.js";
import { defaultCacheDir } from "../../runtime/cache-dir.js";
import { assessHost, formatDoctor, type ProviderChoice } from "../../runtime/doctor.js";
import { probeHost } from "../../runtime/host-probe.js";
import { hydrate } from "../../runtime/hydrate.js";
import { choiceFlag } from "../flags.js";

/**
 * Test hook: resolve device and system paths (`/dev/kvm`, `/dev/vhost-vsock`,
 * `/usr/local/bin/firecracker`) under this directory. It can only hide what the host offers.
 */
export const RUNTIME_ROOT_ENV = "ENCLAVE_RUNTIME_ROOT";

interface HydrateFlags {
  cache?: string;
  kernel?: string;
  modules?: string;
  busybox?: string;
  json?: boolean;
}

interface DoctorFlags {
  cache?: string;
  provider: ProviderChoice;
  json?: boolean;
}

export function registerRuntimeCommand(program: Command): void {
  const runtime = program
    .command("runtime")
    .description("the isolated runtime: microVM assets and host support");
  runtime
    .command("hydrate")
    .description(
      "build rootfs.cpio reproducibly and put the kernel in place as vmlinux, with a manifest of SHA-256 digests",
    )
    .option("--cache <dir>", "runtime asset directory (default: ~/.enclave/cache)")
    .option("--kernel <file>", "kernel image, ELF vmlinux or bzImage (default: the newest /boot/vmlinuz-*)")
    .option("--modules <dir>", "the kernel's module tree (default: /lib/modules/<release of the kernel>)")
    .option("--busybox <file>", "a static busybox (default: /bin/busybox, Debian's busybox-static)")
    .option("--json", "print { measurement, kernel, rootfs, modules } as JSON")
    .action(async (f: HydrateFlags) => {
      const cacheDir = resolve(f.cache ?? defaultCacheDir());
      const r = await hydrate({
        cacheDir,
        kernel: f.kernel && resolve(f.kernel),
        modulesDir: f.modules && resolve(f.modules),
        busybox: f.busybox && resolve(f.busybox),
      });
      const { kernel, rootfs, modules } = r.manifest;
      process.stdout.write(
        f.json
          ? JSON.stringify(
              { cache: cacheDir, measurement: r.measurement, kernel, rootfs, modules },
              null,
              2,
            ) + "\n"
          : [
              `hydrated:    ${cacheDir}`,
              `kernel:      ${kernel.release} (${kernel.format}, ${kernel.bytes} bytes) from ${r.kernelSource}`,
              `rootfs:      ${rootfs.entries} entries, ${rootfs.bytes} bytes`,
              `measurement: ${r.measurement} (SHA-256 of manifest.json)`,
              ...(kernel.format === "bzImage"
                ? [
                    "note:        the kernel stayed a bzImage (no decompressor for its payload): QEMU boots it, Firecracker cannot",
                  ]
                : []),
            ].join("\n") + "\n",
      );
    });
  runtime
    .command("doctor")
    .description(
      "what this host offers the isolated runtime (KVM, vhost-vsock, Firecracker, QEMU, provider) and why a mode is unavailable",
    )
    .option("--cache <dir>", "runtime asset directory (default: ~/.enclave/cache)")
    .option(
      "--provider <p>",
      "auto | native | lima | wsl2",
      choiceFlag(["auto", "native", "lima", "wsl2"] as const),
      "auto" as ProviderChoice,
    )
    .option("--json", "print { host, checks, provider, modes } as JSON")
    .action(async (f: DoctorFlags) => {
      const cacheDir = resolve(f.cache ?? defaultCacheDir());
      const root = process.env[RUNTIME_ROOT_ENV];
      const facts = await probeHost({ cacheDir, root: root ? resolve(root) : undefined });
      const report = assessHost(facts, f.provider, await inspectAssets(cacheDir));
      process.stdout.write(f.json ? JSON.stringify(report, null, 2) + "\n" : formatDoctor(report));
    });
}
