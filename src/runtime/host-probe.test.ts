import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { findOnPath, probeBoot, probeFirmware, probeHost } from "./host-probe.js";

const qemu = await findOnPath("qemu-system-x86_64");
/** CI installs QEMU (.ci/run): there the real probe must run, never silently skip. */
const needQemu = !!process.env.CI || !!qemu;

describe("host probe", () => {
  it("puts the probe's code at the x86 reset vector of a 64 KiB firmware", () => {
    const rom = probeFirmware();
    expect(rom.length).toBe(65536);
    // mov al, 0x2a ; out 0xf4, al ; hlt ; jmp $
    expect([...rom.subarray(0xfff0, 0xfff7)]).toEqual([0xb0, 0x2a, 0xe6, 0xf4, 0xf4, 0xeb, 0xfe]);
  });

  it("finds nothing on a host root without devices and a PATH without QEMU, and says where it looked", async () => {
    const root = mkdtempSync(join(tmpdir(), "no-runtime-"));
    const f = await probeHost({ root, cacheDir: join(root, "cache"), path: join(root, "bin") });
    expect(f.kvm).toEqual({ path: join(root, "dev/kvm"), present: false, readWrite: false });
    expect(f.vhostVsock.present).toBe(false);
    expect(f.qemu.path).toBeUndefined();
    expect(f.kvmProbe.status).toBe("skipped");
    expect(f.tcgProbe.detail).toBe("no QEMU with the microvm machine to boot the probe");
    expect(f.firecracker.detail).toBe(
      `not found (looked in ${join(root, "cache/firecracker")}, ${join(root, "usr/local/bin/firecracker")})`,
    );
  });

  it("takes Firecracker from the cache before the system path, and only when it runs", async () => {
    const root = mkdtempSync(join(tmpdir(), "fc-"));
    const cache = join(root, "cache");
    mkdirSync(cache);
    mkdirSync(join(root, "usr/local/bin"), { recursive: true });
    const fake = (path: string, script: string) => (
      writeFileSync(path, `#!/bin/sh\n${script}\n`),
      chmodSync(path, 0o755)
    );
    fake(join(root, "usr/local/bin/firecracker"), 'echo "Firecracker v1.7.0"');
    fake(join(cache, "firecracker"), "exit 3");
    const broken = await probeHost({ root, cacheDir: cache, path: "" });
    expect(broken.firecracker).toEqual({
      path: join(cache, "firecracker"),
      detail: `${join(cache, "firecracker")} does not run (--version exited 3)`,
    });
    fake(join(cache, "firecracker"), 'echo "Firecracker v1.9.1"');
    const ok = await probeHost({ root, cacheDir: cache, path: "" });
    expect(ok.firecracker.version).toBe("Firecracker v1.9.1");
  });

  it.skipIf(!needQemu)("boots the probe firmware under QEMU's emulation and sees its exit byte", async () => {
    expect(qemu, "qemu-system-x86_64 must be installed in CI").toBeDefined();
    const r = await probeBoot(qemu!, "tcg", 20_000);
    expect(r.status, r.detail).toBe("pass");
    expect(r.detail).toMatch(/^probe guest ran under tcg in \d+ ms$/);
  });

  it("reports a VMM that exits without the probe's byte as a failure with its reason", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fakeqemu-"));
    const fake = join(dir, "qemu-system-x86_64");
    writeFileSync(
      fake,
      '#!/bin/sh\necho "qemu-system-x86_64: failed to initialize kvm: Permission denied" >&2\nexit 1\n',
    );
    chmodSync(fake, 0o755);
    const r = await probeBoot(fake, "kvm", 5000);
    expect(r).toEqual({
      status: "fail",
      detail: "probe guest under kvm failed: failed to initialize kvm: Permission denied",
    });
    writeFileSync(fake, "#!/bin/sh\nexec sleep 30\n");
    const hung = await probeBoot(fake, "kvm", 300);
    expect(hung).toEqual({ status: "fail", detail: "probe guest under kvm did not finish within 300 ms" });
  });
});
