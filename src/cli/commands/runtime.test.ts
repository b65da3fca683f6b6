import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { cli } from "../../../test/support/cli.js";
import { RUNTIME_ROOT_ENV } from "./runtime.js";

afterEach(() => {
  delete process.env[RUNTIME_ROOT_ENV];
});

describe("enclave runtime doctor", () => {
  it("on a host root without devices or assets, says in --json why microvm is unavailable and that process and none are", async () => {
    const root = mkdtempSync(join(tmpdir(), "doctor-"));
    process.env[RUNTIME_ROOT_ENV] = root;
    const { code, out } = await cli("runtime", "doctor", "--cache", join(root, "cache"), "--json");
    expect(code).toBe(0);
    const r = JSON.parse(out);
    expect(r.provider).toMatchObject({ requested: "auto", resolved: "native" });
    expect(r.provider.providers.native).toEqual({
      available: false,
      reason: `${join(root, "dev/kvm")} is absent: load kvm_intel or kvm_amd, or enable nested virtualisation`,
    });
    expect(r.modes.microvm.available).toBe(false);
    expect(r.modes.microvm.reason).toContain("run enclave runtime hydrate");
    expect(r.modes.process.available).toBe(true);
    expect(r.modes.none.available).toBe(true);
    expect(r.checks.map((c: { name: string }) => c.name)).toEqual([
      "kvm device",
      "kvm probe boot",
      "emulated probe boot",
      "vhost-vsock device",
      "vsock sockets",
      "firecracker",
      "qemu",
      "qemu microvm machine",
      "assets",
      "provider",
    ]);
  });

  it("refuses an unknown provider, naming the flag and the choices", async () => {
    const { code, err } = await cli("runtime", "doctor", "--provider", "hyperv");
    expect(code).not.toBe(0);
    expect(err).toContain("--provider");
    expect(err).toContain("must be one of auto, native, lima, wsl2");
  });
});
