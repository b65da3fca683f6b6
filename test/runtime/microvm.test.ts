import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadAssets } from "../../src/runtime/assets.js";
import { findOnPath, probeBoot } from "../../src/runtime/host-probe.js";
import { hydrate } from "../../src/runtime/hydrate.js";
import { bootMicroVm } from "../../src/runtime/vmm/qemu-microvm.js";

/**
 * A real microVM from hydrated assets: the kernel boots under QEMU microvm (KVM if the probe passes,
 * else emulation, which is what these machines give), /init brings up loopback, the guest agent
 * (the build's dist/runtime/guest/guest-main.js) answers over virtio-serial. One boot only: an
 * emulated boot costs 15-60 s on a shared 2-core machine. CI installs what it needs (.ci/run).
 */
const qemu = await findOnPath("qemu-system-x86_64");
const hostReady =
  !!qemu && existsSync("/bin/busybox") && readdirSync("/boot").some((n) => n.startsWith("vmlinuz-"));
const dir = mkdtempSync(join(tmpdir(), "microvm-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!hostReady && !process.env.CI)("a real microVM", () => {
  it(
    "boots from hydrated assets, sees no network interface but lo, answers over the channel and powers off",
    { timeout: 420_000 },
    async () => {
      expect(hostReady, "CI must have QEMU, busybox-static and a kernel (.ci/run installs them)").toBe(true);
      const cacheDir = join(dir, "cache");
      const { measurement } = await hydrate({ cacheDir });
      const assets = await loadAssets(cacheDir);
      expect(assets.measurement).toBe(measurement);
      const kvm = await probeBoot(qemu!, "kvm", 10_000);
      const accel = kvm.status === "pass" ? "kvm" : "emulated";
      const consoleLines: string[] = [];
      const vm = await bootMicroVm({
        qemu: qemu!,
        assets,
        accel,
        bootTimeoutMs: 300_000,
        onConsole: (l) => consoleLines.push(l),
      });
      try {
        expect(vm.ready.interfaces).toEqual(["lo"]);
        expect(vm.ready.node).toBe(process.version);
        expect(await vm.connection.request("interfaces", null, 30_000)).toEqual(["lo"]);
        await expect(vm.connection.request("no-such-method", null, 30_000)).rejects.toMatchObject({
          code: "GUEST_UNKNOWN_METHOD",
        });
        await vm.connection.request("exit", null, 30_000);
        expect(await vm.exited).toEqual({ code: 0, signal: null });
        expect(consoleLines).toContain("enclave-init: up");
        console.log(`microVM (${vm.vmm}, ${accel}, ${vm.channel}): ready after ${vm.bootMs} ms`);
      } finally {
        await vm.stop();
      }
    },
  );
});
