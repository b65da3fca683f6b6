import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { detectCapabilities, type CommandRunner } from "./capabilities.js";
import { ConfigfsTsmProvider, type TsmFs } from "./providers/configfs-tsm.js";
import { GramineSgxProvider } from "./providers/gramine-sgx.js";
import { nsmIoctlUnavailableReason } from "./providers/nitro-nsm.js";
import { InsecureProvider, SimulatedProvider } from "./providers/software.js";
import { UnsupportedInterfaceProvider } from "./providers/unsupported.js";
import { NoTeeError, selectProvider } from "./select-provider.js";

/** A fake machine: a temp directory standing in for "/", with the given files. */
function machine(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "machine-"));
  for (const [path, content] of Object.entries(files)) {
    const full = join(root, path);
    mkdirSync(dirname(full), { recursive: true });
    if (path.endsWith("/")) mkdirSync(full, { recursive: true });
    else writeFileSync(full, content);
  }
  return root;
}

/** configfs-tsm stand-in: mkdir creates a `provider` attribute. */
function tsmFs(provider: string): TsmFs {
  const entries = new Set<string>();
  return {
    mkdir: async (p) => void entries.add(p),
    rmdir: async (p) => void entries.delete(p),
    readFile: async (p) => {
      if (p.endsWith("/provider") && entries.has(dirname(p)))
        return new TextEncoder().encode(provider + "\n");
      throw Object.assign(new Error("nope"), { code: "ENOENT" });
    },
    writeFile: async () => undefined,
    exists: async () => true,
  };
}

const noCommands = { runCommand: null };
const CPUINFO = (flags: string) => `processor\t: 0\nflags\t\t: fpu vme ${flags}\n\n`;

describe("detectCapabilities", () => {
  it("finds nothing on a plain machine, and says what it checked", async () => {
    const root = machine({ "proc/cpuinfo": CPUINFO("sse2 avx2") });
    const caps = await detectCapabilities({ root, ...noCommands });
    expect(caps.tees.every((t) => !t.present && !t.collectable)).toBe(true);
    expect(caps.checked).toEqual(
      expect.arrayContaining(["/dev/sev-guest", "/dev/tdx_guest", "/dev/nsm", "/dev/sgx_enclave"]),
    );
  });

  it("recognises an SNP guest through configfs-tsm as collectable", async () => {
    const root = machine({
      "proc/cpuinfo": CPUINFO("hypervisor sev sev_es sev_snp"),
      "dev/sev-guest": "",
      "sys/kernel/config/tsm/report/": "",
    });
    const caps = await detectCapabilities({ root, tsmFs: tsmFs("sev_guest"), ...noCommands });
    const snp = caps.tees.find((t) => t.kind === "snp")!;
    expect(snp.present && snp.collectable).toBe(true);
    expect(snp.interfaces.find((i) => i.name === "configfs-tsm")?.usable).toBe(true);
    expect(snp.interfaces.find((i) => i.name === "sev-guest device")?.usable).toBe(false);
    expect(caps.cpuFlags).toEqual(expect.arrayContaining(["hypervisor", "sev_snp"]));
    expect(caps.tees.find((t) => t.kind === "tdx")?.present).toBe(false);
  });

  it("sees a TDX guest by its cpu flag and device but cannot collect without configfs-tsm", async () => {
    const root = machine({ "proc/cpuinfo": CPUINFO("hypervisor tdx_guest"), "dev/tdx_guest": "" });
    const caps = await detectCapabilities({ root, ...noCommands });
    const tdx = caps.tees.find((t) => t.kind === "tdx")!;
    expect(tdx.present).toBe(true);
    expect(tdx.collectable).toBe(false);
  });

  it("treats an SEV-SNP host's cpu flag as not attestable", async () => {
    const root = machine({ "proc/cpuinfo": CPUINFO("sev sev_es sev_snp") });
    const caps = await detectCapabilities({ root, ...noCommands });
    const snp = caps.tees.find((t) => t.kind === "snp")!;
    expect(snp.present).toBe(false);
    expect(snp.interfaces.find((i) => i.name === "cpu flag sev_snp")?.note).toMatch(/host/);
  });

  it("detects Gramine DCAP, Nitro NSM and NVIDIA CC mode", async () => {
    const root = machine({
      "dev/attestation/quote": "",
      "dev/attestation/attestation_type": "dcap\n",
      "dev/nsm": "",
      "proc/driver/nvidia/gpus/0000:01:00.0/information": "Model: H100",
    });
    const calls: string[] = [];
    const runCommand: CommandRunner = async (cmd, args) => {
      calls.push([cmd, ...args].join(" "));
      return { code: 0, stdout: "CC status: ON\n" };
    };
    const caps = await detectCapabilities({ root, runCommand });
    const by = (k: string) => caps.tees.find((t) => t.kind === k)!;
    expect(by("sgx").collectable).toBe(true);
    // With the native addon built, /dev/nsm is collectable through its ioctl.
    expect(by("nitro").present).toBe(true);
    expect(by("nitro").collectable).toBe(nsmIoctlUnavailableReason() === null);
    expect(by("nvidia").present && !by("nvidia").collectable).toBe(true);
    expect(calls).toEqual(["nvidia-smi conf-compute -f"]);
  });

  it("never throws, even when nvidia-smi fails", async () => {
    const root = machine({ "proc/driver/nvidia/gpus/x": "" });
    const caps = await detectCapabilities({
      root,
      runCommand: async () => {
        throw new Error("boom");
      },
    });
    expect(caps.tees.find((t) => t.kind === "nvidia")?.present).toBe(false);
  });
});

describe("selectProvider", () => {
  it("chooses configfs-tsm for an SNP guest", async () => {
    const root = machine({ "sys/kernel/config/tsm/report/": "" });
    const s = await selectProvider({
      detect: { root, tsmFs: tsmFs("sev_guest"), ...noCommands },
      simulation: true,
    });
    expect(s.provider).toBeInstanceOf(ConfigfsTsmProvider);
    expect(s.provider.kind).toBe("snp");
  });

  it("chooses Gramine for SGX", async () => {
    const root = machine({ "dev/attestation/quote": "", "dev/attestation/attestation_type": "dcap" });
    const s = await selectProvider({ detect: { root, ...noCommands } });
    expect(s.provider).toBeInstanceOf(GramineSgxProvider);
  });

  it("falls back to simulated with --simulation, to insecure with --insecure", async () => {
    const root = machine({ "proc/cpuinfo": CPUINFO("sse2") });
    const sim = await selectProvider({ detect: { root, ...noCommands }, simulation: true, insecure: true });
    expect(sim.provider).toBeInstanceOf(SimulatedProvider);
    expect(sim.reason).toMatch(/SIMULATED/);
    const ins = await selectProvider({ detect: { root, ...noCommands }, insecure: true });
    expect(ins.provider).toBeInstanceOf(InsecureProvider);
  });

  it("throws NO_TEE naming what was checked and what to pass", async () => {
    const root = machine({ "proc/cpuinfo": CPUINFO("sse2") });
    const err = await selectProvider({ detect: { root, ...noCommands } }).catch((e) => e);
    expect(err).toBeInstanceOf(NoTeeError);
    expect(err.code).toBe("NO_TEE");
    expect(err.message).toMatch(/^no TEE hardware detected \(checked .*\/dev\/sev-guest.*\/dev\/nsm.*\)/);
    expect(err.message).toMatch(
      /pass --simulation for a local simulation or --insecure to run without hardware protection/,
    );
  });

  it("says when hardware exists but cannot be used from Node", async () => {
    const root = machine({ "proc/driver/nvidia/gpus/x": "" });
    const runCommand: CommandRunner = async () => ({ code: 0, stdout: "CC status: ON\n" });
    const err = await selectProvider({ detect: { root, runCommand } }).catch((e) => e);
    expect(err.code).toBe("TEE_UNSUPPORTED");
    expect(err.message).toMatch(/nvidia.*NVML/);
  });

  it.skipIf(nsmIoctlUnavailableReason() !== null)(
    "selects the NSM provider for /dev/nsm; a file there that is not the NSM fails to collect, typed",
    async () => {
      const root = machine({ "dev/nsm": "" });
      const { provider, reason } = await selectProvider({ detect: { root, ...noCommands } });
      expect(provider.kind).toBe("nitro");
      expect(provider.label).toBe("HARDWARE");
      expect(reason).toMatch(/nitro enclave detected/);
      const err = await provider.collect(new Uint8Array(64)).catch((e) => e);
      expect(err.code).toBe("PROVIDER_FAILED");
      expect(err.message).toMatch(/NSM ioctl .* failed \((ENOTTY|EINVAL)\)/);
    },
  );

  it("unsupported device providers refuse to collect, explaining the alternative", async () => {
    for (const iface of ["sev-guest", "tdx-guest", "nsm", "nvidia-cc"] as const) {
      const p = new UnsupportedInterfaceProvider(iface);
      const err = await p.collect(new Uint8Array(64)).catch((e) => e);
      expect(err.code, iface).toBe("PROVIDER_UNSUPPORTED");
      expect(err.message).toMatch(/enclave verify/);
    }
  });
});

describe("GramineSgxProvider", () => {
  it("writes user_report_data and reads the quote, checking the report data", async () => {
    // A recorded SGX quote; its REPORTDATA is "Hello, world!" padded with zeros (sgx/EXPECTED.json).
    const { readFileSync } = await import("node:fs");
    const quote = new Uint8Array(
      readFileSync(new URL("../../test/vectors/sgx/dcap-qvl_sgx_quote.bin", import.meta.url)),
    );
    const rd = new Uint8Array(64);
    rd.set(new TextEncoder().encode("Hello, world!"));
    const written: Uint8Array[] = [];
    const fs = {
      readFile: async (p: string) =>
        p.endsWith("attestation_type") ? new TextEncoder().encode("dcap\n") : quote,
      writeFile: async (_p: string, d: Uint8Array) => void written.push(d),
    };
    const ev = await new GramineSgxProvider({ root: "/x", fs }).collect(rd);
    expect(ev.kind).toBe("sgx");
    expect(Buffer.from(written[0]).equals(Buffer.from(rd))).toBe(true);
    await expect(
      new GramineSgxProvider({ root: "/x", fs }).collect(new Uint8Array(64)),
    ).rejects.toMatchObject({
      code: "REPORT_DATA_MISMATCH",
    });
    const epid = { ...fs, readFile: async () => new TextEncoder().encode("epid") };
    await expect(new GramineSgxProvider({ fs: epid }).collect(rd)).rejects.toMatchObject({
      code: "PROVIDER_UNSUPPORTED",
    });
  });
});
