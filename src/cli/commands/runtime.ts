import { resolve } from "node:path";
import type { Command } from "commander";
import { inspectAssets } from "../../runtime/assets.js";
import { defaultCacheDir } from "../../runtime/cache-dir.js";
import { assessHost, formatDoctor, type ProviderChoice } from "../../runtime/doctor.js";
import { probeHost } from "../../runtime/host-probe.js";
import { choiceFlag } from "../flags.js";

/**
 * Test hook: resolve device and system paths (`/dev/kvm`, `/dev/vhost-vsock`,
 * `/usr/local/bin/firecracker`) under this directory. It can only hide what the host offers.
 */
export const RUNTIME_ROOT_ENV = "ENCLAVE_RUNTIME_ROOT";

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
