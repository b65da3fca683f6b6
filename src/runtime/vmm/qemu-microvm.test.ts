import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { RuntimeAssets } from "../assets.js";
import { bootMicroVm, qemuArgs } from "./qemu-microvm.js";

const assets = { kernel: "/cache/vmlinux", rootfs: "/cache/rootfs.cpio" } as RuntimeAssets;

/**
 * A stand-in for qemu-system-x86_64 that speaks the channel like a guest would, or fails like one:
 * the host side's deadlines and typed errors are checked without booting anything.
 */
function fakeQemu(behaviour: string): string {
  const dir = mkdtempSync(join(tmpdir(), "fake-qemu-"));
  const path = join(dir, "qemu-system-x86_64");
  writeFileSync(
    path,
    `#!${process.execPath}
const net = require("node:net");
const arg = process.argv[process.argv.indexOf("-chardev") + 1];
const sock = /path=([^,]+)/.exec(arg)[1];
const frame = (m) => { const b = Buffer.from(JSON.stringify(m)); const h = Buffer.alloc(4); h.writeUInt32BE(b.length); return Buffer.concat([h, b]); };
const mode = ${JSON.stringify(behaviour)};
if (mode === "fail") { process.stderr.write("qemu-system-x86_64: failed to initialize kvm: Permission denied\\n"); process.exit(1); }
const s = net.connect(sock, () => {
  if (mode === "hang") return;
  if (mode === "garbage") return s.write(Buffer.from([0xff, 0xff, 0xff, 0xff]));
  if (mode === "bad-ready") return s.write(frame({ type: "ready", node: "v0", interfaces: [1] }));
  if (mode === "stray-reply") s.on("data", () => s.write(frame({ type: "reply", id: 99, ok: true, value: 0 })));
  s.write(frame({ type: "ready", node: "v0", interfaces: ["lo"] }));
  s.on("data", () => { if (mode === "die-on-request") process.exit(9); });
});
setInterval(() => {}, 1000);
`,
  );
  chmodSync(path, 0o755);
  return path;
}

const boot = (qemu: string, bootTimeoutMs = 10_000) =>
  bootMicroVm({ qemu, assets, accel: "emulated", bootTimeoutMs });

describe("QEMU microvm", () => {
  it("never gives the guest a network device and always sandboxes QEMU", () => {
    for (const accel of ["kvm", "emulated"] as const) {
      const args = qemuArgs({ assets, accel, memoryMiB: 512, socket: "/run/x.sock", append: [] });
      expect(args.join(" ")).toContain("-nodefaults");
      expect(args[args.indexOf("-nic") + 1]).toBe("none");
      expect(args.filter((a) => /netdev|virtio-net|e1000|user,|tap/.test(a))).toEqual([]);
      expect(args[args.indexOf("-sandbox") + 1]).toMatch(/^on,/);
      expect(args).toContain("-no-reboot");
    }
    expect(qemuArgs({ assets, accel: "kvm", memoryMiB: 512, socket: "/s", append: [] })).toContain(
      "microvm,accel=kvm",
    );
    const tcg = qemuArgs({ assets, accel: "emulated", memoryMiB: 512, socket: "/s", append: [] });
    expect(tcg[tcg.indexOf("-append") + 1]).toContain("tsc_early_khz=");
  });

  it("with vhost-vsock gives the guest a vsock device and its host port, and no virtio-serial port", () => {
    const args = qemuArgs({
      assets,
      accel: "kvm",
      memoryMiB: 512,
      socket: "/s",
      append: [],
      vsock: { cid: 77, port: 123456 },
    });
    expect(args[args.indexOf("-nic") + 1]).toBe("none");
    expect(args).toContain("vhost-vsock-device,guest-cid=77");
    expect(args.filter((a) => /virtserialport|virtio-serial|chardev/.test(a))).toEqual([]);
    expect(args[args.indexOf("-append") + 1]).toContain("enclave.channel=vsock enclave.vsock_port=123456");
  });

  it("turns a VMM that cannot start into a typed error carrying its reason", async () => {
    await expect(boot(fakeQemu("fail"))).rejects.toMatchObject({
      code: "RUNTIME_GUEST_CRASHED",
      message:
        "the microVM ended (exit status 1) before the guest finished: failed to initialize kvm: Permission denied",
    });
    await expect(boot("/nonexistent/qemu")).rejects.toMatchObject({ code: "RUNTIME_VMM_START_FAILED" });
  });

  it("turns a guest that never becomes ready into GUEST_TIMEOUT within its deadline, and kills the VM", async () => {
    const started = performance.now();
    await expect(boot(fakeQemu("hang"), 1500)).rejects.toMatchObject({
      code: "RUNTIME_GUEST_TIMEOUT",
      message: "the guest was not ready within 1500 ms",
    });
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it("turns a guest that dies during a request into GUEST_CRASHED for that request", async () => {
    const vm = await boot(fakeQemu("die-on-request"));
    expect(vm.ready.interfaces).toEqual(["lo"]);
    await expect(vm.connection.request("ping", null, 10_000)).rejects.toMatchObject({
      code: "RUNTIME_GUEST_CRASHED",
      message: "the microVM ended (exit status 9) before the guest finished",
    });
    await vm.stop();
  });

  it("turns a request the guest ignores into GUEST_TIMEOUT, and hostile framing into CHANNEL_PROTOCOL", async () => {
    const vm = await boot(fakeQemu("ignore"));
    await expect(vm.connection.request("ping", null, 500)).rejects.toMatchObject({
      code: "RUNTIME_GUEST_TIMEOUT",
      message: "guest did not answer ping within 500 ms",
    });
    await vm.stop();
    await expect(boot(fakeQemu("garbage"))).rejects.toMatchObject({ code: "RUNTIME_CHANNEL_PROTOCOL" });
    await expect(boot(fakeQemu("bad-ready"))).rejects.toMatchObject({
      code: "RUNTIME_CHANNEL_PROTOCOL",
      message: "the guest's first message was not ready",
    });
  });

  it("stops the VM of a guest that breaks the protocol after ready, failing what is pending", async () => {
    const vm = await boot(fakeQemu("stray-reply"));
    await expect(vm.connection.request("ping", null, 10_000)).rejects.toMatchObject({
      code: "RUNTIME_CHANNEL_PROTOCOL",
      message: "reply to no pending request",
    });
    expect((await vm.exited).signal).toBe("SIGKILL");
    await expect(vm.connection.request("ping", null, 10_000)).rejects.toMatchObject({
      code: "RUNTIME_CHANNEL_PROTOCOL",
    });
    await vm.stop();
  });
});
