import { describe, expect, it } from "vitest";
import { assessHost, formatDoctor, type AssetsFact } from "./doctor.js";
import type { HostFacts } from "./host-probe.js";

const hydrated: AssetsFact = { status: "pass", detail: "hydrated in /cache" };
const missing: AssetsFact = {
  status: "fail",
  detail: "vmlinux missing in /cache: run enclave runtime hydrate",
};

/** This machine as the probe saw it: /dev/kvm opens, guests do not run under it, QEMU emulates fine. */
function facts(over: Partial<HostFacts> = {}): HostFacts {
  return {
    platform: "linux",
    arch: "x64",
    kernelRelease: "6.1.0-test",
    kvm: { path: "/dev/kvm", present: true, readWrite: true },
    vhostVsock: { path: "/dev/vhost-vsock", present: false, readWrite: false },
    vsockSockets: { usable: true, detail: "AF_VSOCK sockets open" },
    firecracker: { detail: "not found (looked in /cache/firecracker, /usr/local/bin/firecracker)" },
    qemu: {
      path: "/usr/bin/qemu-system-x86_64",
      version: "QEMU emulator version 7.2",
      microvm: true,
      detail: "found",
    },
    kvmProbe: { status: "fail", detail: "probe guest under kvm did not finish within 10000 ms" },
    tcgProbe: { status: "pass", detail: "probe guest ran under tcg in 120 ms", ms: 120 },
    launcher: { inLimaGuest: false, inWsl2Guest: false },
    ...over,
  };
}

describe("runtime doctor", () => {
  it("falls back to emulated QEMU with virtio-serial when KVM fails its probe and vhost-vsock is absent, and says so loudly", () => {
    const r = assessHost(facts(), "auto", hydrated);
    expect(r.modes.microvm).toMatchObject({
      available: true,
      vmm: "qemu-microvm",
      accel: "emulated",
      channel: "virtio-serial",
    });
    expect(r.modes.microvm.warning).toMatch(/software emulation.*never for production/);
    expect(r.modes.microvm.warning).toContain("did not finish within");
    expect(formatDoctor(r)).toMatch(/^WARNING: KVM is not usable/m);
  });

  it("selects Firecracker with its vsock once its binary runs and the KVM probe passes; QEMU with KVM without the binary", () => {
    const firecracker = {
      path: "/usr/local/bin/firecracker",
      version: "Firecracker v1.7.0",
      detail: "found",
    };
    const kvmProbe = { status: "pass" as const, detail: "probe guest ran under kvm in 30 ms", ms: 30 };
    const vhostVsock = { path: "/dev/vhost-vsock", present: true, readWrite: true };
    const r = assessHost(facts({ firecracker, vhostVsock, kvmProbe }), "native", hydrated);
    expect(r.modes.microvm).toMatchObject({
      available: true,
      vmm: "firecracker",
      accel: "kvm",
      channel: "vsock",
    });
    expect(r.modes.microvm.warning).toBeUndefined();
    // QEMU drives vhost-vsock where the device opens and the host has AF_VSOCK sockets...
    const q = assessHost(facts({ vhostVsock, kvmProbe }), "native", hydrated);
    expect(q.modes.microvm).toMatchObject({
      available: true,
      vmm: "qemu-microvm",
      accel: "kvm",
      channel: "vsock",
    });
    expect(q.modes.microvm.reason).toContain("channel vsock (vhost-vsock)");
    // ...and says why not, falling back to virtio-serial, where the host cannot open the sockets.
    const vsockSockets = { usable: false, detail: "AF_VSOCK is not supported by this kernel" };
    const n = assessHost(facts({ vhostVsock, vsockSockets, kvmProbe }), "native", hydrated);
    expect(n.modes.microvm).toMatchObject({ channel: "virtio-serial" });
    expect(n.modes.microvm.reason).toContain(
      "/dev/vhost-vsock opens but this host has no AF_VSOCK sockets (AF_VSOCK is not supported by this kernel)",
    );
    expect(n.checks.find((c) => c.name === "vsock sockets")).toMatchObject({ status: "fail" });
    // Without the device (this project's machines), the check says what QEMU uses instead.
    const none = assessHost(facts({ kvmProbe }), "native", hydrated);
    expect(none.modes.microvm).toMatchObject({ channel: "virtio-serial" });
    expect(none.checks.find((c) => c.name === "vhost-vsock device")).toMatchObject({
      status: "fail",
      detail:
        "/dev/vhost-vsock is absent: QEMU's vsock channel is unavailable; it uses virtio-serial over a Unix socket",
    });
    // Without working KVM, Firecracker is said to need it, and QEMU emulates.
    const e = assessHost(facts({ firecracker }), "native", hydrated);
    expect(e.modes.microvm).toMatchObject({ vmm: "qemu-microvm", accel: "emulated" });
    expect(e.modes.microvm.reason).toContain(
      "Firecracker found (/usr/local/bin/firecracker) but it needs working KVM",
    );
    expect(r.checks.find((c) => c.name === "firecracker")).toEqual({
      name: "firecracker",
      status: "pass",
      detail: "Firecracker v1.7.0 (/usr/local/bin/firecracker)",
    });
  });

  it("names every reason microvm is unavailable: no KVM device, no VMM, no assets", () => {
    const r = assessHost(
      facts({
        kvm: { path: "/dev/kvm", present: false, readWrite: false },
        qemu: {
          microvm: false,
          detail: "qemu-system-x86_64 not on PATH (Debian: apt-get install qemu-system-x86)",
        },
        kvmProbe: { status: "skipped", detail: "/dev/kvm is absent" },
        tcgProbe: { status: "skipped", detail: "no QEMU with the microvm machine to boot the probe" },
      }),
      "auto",
      missing,
    );
    const m = r.modes.microvm;
    expect(m.available).toBe(false);
    expect(m.reason).toContain("provider: /dev/kvm is absent");
    expect(m.reason).toContain("assets: vmlinux missing");
    expect(m.reason).toContain("qemu-system-x86_64 not on PATH");
    expect(r.modes.process.available).toBe(true);
    expect(r.modes.none.available).toBe(true);
    expect(r.checks.find((c) => c.name === "kvm device")?.status).toBe("fail");
  });

  it("refuses an emulated VMM whose probe boot failed", () => {
    const r = assessHost(
      facts({ tcgProbe: { status: "fail", detail: "probe guest under tcg failed: no memory" } }),
      "auto",
      hydrated,
    );
    expect(r.modes.microvm.available).toBe(false);
    expect(r.modes.microvm.reason).toContain("QEMU: probe guest under tcg failed");
  });

  it("resolves auto to the guest it runs in and explains each provider", () => {
    const wsl = assessHost(facts({ launcher: { inLimaGuest: false, inWsl2Guest: true } }), "auto", hydrated);
    expect(wsl.provider.resolved).toBe("wsl2");
    expect(wsl.provider.providers.wsl2).toEqual({
      available: true,
      reason: "inside a wsl2 Linux guest with /dev/kvm",
    });
    const lima = assessHost(facts({ launcher: { inLimaGuest: true, inWsl2Guest: false } }), "auto", hydrated);
    expect(lima.provider.resolved).toBe("lima");

    const plain = assessHost(facts(), "lima", hydrated);
    expect(plain.provider.resolved).toBe("lima");
    expect(plain.modes.microvm.available).toBe(false);
    expect(plain.modes.microvm.reason).toContain("not a lima guest: lima launches a Linux guest from macOS");

    const mac = assessHost(
      facts({
        platform: "darwin",
        launcher: { limactl: "/opt/homebrew/bin/limactl", inLimaGuest: false, inWsl2Guest: false },
      }),
      "auto",
      hydrated,
    );
    expect(mac.provider.resolved).toBe("lima");
    expect(mac.provider.providers.lima.available).toBe(true);
    expect(mac.provider.providers.native.reason).toContain("native needs a Linux host; this is darwin");
    expect(mac.modes.microvm.available).toBe(false);
    expect(mac.modes.microvm.reason).toContain("Linux kernel only");

    const win = assessHost(facts({ platform: "win32" }), "auto", hydrated);
    expect(win.provider.resolved).toBe("wsl2");
    expect(win.provider.providers.wsl2).toEqual({ available: false, reason: "wsl.exe not on PATH" });
  });
});
