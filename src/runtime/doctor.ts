import type { CheckResult } from "../attestation/types.js";
import type { HostFacts } from "./host-probe.js";

export const PROVIDERS = ["native", "lima", "wsl2"] as const;
export type Provider = (typeof PROVIDERS)[number];
export type ProviderChoice = "auto" | Provider;

export const ISOLATION_MODES = ["microvm", "process", "none"] as const;
export type IsolationMode = (typeof ISOLATION_MODES)[number];

export type VmmName = "firecracker" | "qemu-microvm";
export type Accel = "kvm" | "emulated";
/** `vsock` over vhost-vsock or Firecracker's Unix-socket vsock; `virtio-serial` over a Unix socket otherwise. */
export type ChannelKind = "vsock" | "virtio-serial";

export interface ProviderVerdict {
  available: boolean;
  reason: string;
}

export interface ModeVerdict {
  available: boolean;
  reason: string;
  vmm?: VmmName;
  accel?: Accel;
  channel?: ChannelKind;
  /** Said loudly wherever the mode is used: software emulation is for tests, never production. */
  warning?: string;
}

/** State of the hydrated assets, as `doctor` reports it (see `hydrate`). */
export interface AssetsFact {
  status: "pass" | "fail";
  detail: string;
  measurement?: string;
}

export interface DoctorReport {
  host: { platform: string; arch: string; kernel: string };
  checks: CheckResult[];
  provider: { requested: ProviderChoice; resolved?: Provider; providers: Record<Provider, ProviderVerdict> };
  modes: Record<IsolationMode, ModeVerdict>;
}

function providerVerdicts(f: HostFacts): Record<Provider, ProviderVerdict> {
  const linux = f.platform === "linux";
  const kvm = f.kvm.present
    ? { available: true, reason: "" }
    : {
        available: false,
        reason: `${f.kvm.path} is absent: load kvm_intel or kvm_amd, or enable nested virtualisation`,
      };
  const native: ProviderVerdict = !linux
    ? {
        available: false,
        reason: `native needs a Linux host; this is ${f.platform} (use ${f.platform === "darwin" ? "lima" : "wsl2"})`,
      }
    : kvm.available
      ? { available: true, reason: `Linux host with ${f.kvm.path}` }
      : kvm;
  const guest = (
    name: string,
    inGuest: boolean,
    launcher: string | undefined,
    host: string,
    tool: string,
  ) => {
    if (linux && inGuest)
      return kvm.available
        ? { available: true, reason: `inside a ${name} Linux guest with ${f.kvm.path}` }
        : kvm;
    if (linux)
      return { available: false, reason: `not a ${name} guest: ${name} launches a Linux guest from ${host}` };
    if (f.platform !== (host === "macOS" ? "darwin" : "win32"))
      return { available: false, reason: `${name} is a launcher on ${host} only` };
    return launcher
      ? { available: true, reason: `launcher ${launcher}; enforcement stays in the guest's Linux kernel` }
      : { available: false, reason: `${tool} not on PATH` };
  };
  return {
    native,
    lima: guest("lima", f.launcher.inLimaGuest, f.launcher.limactl, "macOS", "limactl"),
    wsl2: guest("wsl2", f.launcher.inWsl2Guest, f.launcher.wslExe, "Windows", "wsl.exe"),
  };
}

/** auto: the guest we are in (WSL2, Lima), else native on Linux; the launcher on macOS and Windows. */
export function resolveProvider(f: HostFacts, requested: ProviderChoice): Provider {
  if (requested !== "auto") return requested;
  if (f.platform === "darwin") return "lima";
  if (f.platform === "win32") return "wsl2";
  if (f.launcher.inWsl2Guest) return "wsl2";
  if (f.launcher.inLimaGuest) return "lima";
  return "native";
}

/**
 * What this build drives: Firecracker (its Unix-socket vsock as the channel) when its binary runs
 * and KVM passed the probe (Firecracker cannot emulate); else QEMU's microvm machine, with KVM when
 * the probe passed, else emulated; its channel vsock over vhost-vsock where /dev/vhost-vsock opens and
 * the host can open AF_VSOCK sockets, else virtio-serial over a Unix socket, so the verdict is what a
 * boot will do.
 */
function microvmVerdict(f: HostFacts, provider: ProviderVerdict, assets: AssetsFact): ModeVerdict {
  const missing: string[] = [];
  if (f.platform !== "linux")
    missing.push("the VMM runs in a Linux kernel only (launch through the provider)");
  if (!provider.available) missing.push(`provider: ${provider.reason}`);
  if (assets.status !== "pass") missing.push(`assets: ${assets.detail}`);
  const kvmWorks = f.kvmProbe.status === "pass";
  const notes: string[] = [];
  if (f.firecracker.version && !kvmWorks)
    notes.push(`Firecracker found (${f.firecracker.path}) but it needs working KVM`);
  let how: Pick<ModeVerdict, "vmm" | "accel" | "channel"> = {};
  if (f.firecracker.version && kvmWorks) {
    how = { vmm: "firecracker", accel: "kvm", channel: "vsock" };
  } else if (f.qemu.path && f.qemu.microvm && (kvmWorks || f.tcgProbe.status !== "fail")) {
    const vsock = f.vhostVsock.readWrite && f.vsockSockets.usable;
    if (f.vhostVsock.readWrite && !vsock)
      notes.push(
        `${f.vhostVsock.path} opens but this host has no AF_VSOCK sockets (${f.vsockSockets.detail})`,
      );
    how = {
      vmm: "qemu-microvm",
      accel: kvmWorks ? "kvm" : "emulated",
      channel: vsock ? "vsock" : "virtio-serial",
    };
  } else {
    missing.push(`no VMM: QEMU: ${f.qemu.path && f.qemu.microvm ? f.tcgProbe.detail : f.qemu.detail}`);
  }
  const noted = notes.length ? ` (${notes.join("; ")})` : "";
  if (missing.length) return { available: false, reason: missing.join("; ") + noted, ...how };
  return {
    available: true,
    reason: `${how.vmm} with ${how.accel === "kvm" ? "KVM" : "software emulation"}, no network device, channel ${channelText(how)}${noted}`,
    ...how,
    ...(how.accel === "emulated"
      ? {
          warning: `KVM is not usable (${f.kvmProbe.detail}): the microVM runs under software emulation, fine for tests, never for production`,
        }
      : {}),
  };
}

function channelText(how: Pick<ModeVerdict, "vmm" | "channel">): string {
  if (how.channel !== "vsock") return "virtio-serial over a Unix socket";
  return how.vmm === "firecracker" ? "vsock (Firecracker's Unix-socket host side)" : "vsock (vhost-vsock)";
}

function deviceCheck(name: string, d: HostFacts["kvm"], why: string): CheckResult {
  if (d.readWrite) return { name, status: "pass", detail: `${d.path} is readable and writable` };
  return {
    name,
    status: "fail",
    detail: `${d.path} ${d.present ? "is not readable and writable" : "is absent"}: ${why}`,
  };
}

function binaryCheck(name: string, b: HostFacts["firecracker"]): CheckResult {
  return {
    name,
    status: b.version ? "pass" : "fail",
    detail: b.version ? `${b.version} (${b.path})` : b.detail,
  };
}

/** Turn the probed facts into explained checks and a verdict per provider and isolation mode. */
export function assessHost(f: HostFacts, requested: ProviderChoice, assets: AssetsFact): DoctorReport {
  const providers = providerVerdicts(f);
  const resolved = resolveProvider(f, requested);
  const checks: CheckResult[] = [
    deviceCheck("kvm device", f.kvm, "no hardware acceleration"),
    { name: "kvm probe boot", status: f.kvmProbe.status, detail: f.kvmProbe.detail },
    { name: "emulated probe boot", status: f.tcgProbe.status, detail: f.tcgProbe.detail },
    deviceCheck(
      "vhost-vsock device",
      f.vhostVsock,
      "QEMU's vsock channel is unavailable; it uses virtio-serial over a Unix socket",
    ),
    {
      name: "vsock sockets",
      status: f.vsockSockets.usable ? "pass" : "fail",
      detail: f.vsockSockets.usable
        ? f.vsockSockets.detail
        : `${f.vsockSockets.detail}: the host end of vhost-vsock needs them`,
    },
    binaryCheck("firecracker", f.firecracker),
    binaryCheck("qemu", f.qemu),
    { name: "qemu microvm machine", status: f.qemu.microvm ? "pass" : "fail", detail: f.qemu.detail },
    { name: "assets", status: assets.status, detail: assets.detail },
    {
      name: "provider",
      status: providers[resolved].available ? "pass" : "fail",
      detail: `${resolved}${requested === "auto" ? " (auto)" : ""}: ${providers[resolved].reason}`,
    },
  ];
  return {
    host: { platform: f.platform, arch: f.arch, kernel: f.kernelRelease },
    checks,
    provider: { requested, resolved, providers },
    modes: {
      microvm: microvmVerdict(f, providers[resolved], assets),
      process: {
        available: true,
        reason: "a separate OS process on this host: no VM boundary and the host's network namespace",
      },
      none: { available: true, reason: "in the agent's own process: no isolation" },
    },
  };
}

export function formatDoctor(r: DoctorReport): string {
  const mark = { pass: "PASS", fail: "FAIL", skipped: "SKIP", warn: "WARN" } as const;
  const lines = [
    `host:     ${r.host.platform}/${r.host.arch}, kernel ${r.host.kernel}`,
    `provider: ${r.provider.resolved}${r.provider.requested === "auto" ? " (auto)" : ""}`,
    "",
    "checks:",
    ...r.checks.map((c) => `  ${mark[c.status]}  ${c.name}: ${c.detail}`),
    "",
    "providers:",
    ...PROVIDERS.map(
      (p) =>
        `  ${r.provider.providers[p].available ? "yes" : "no "}  ${p}: ${r.provider.providers[p].reason}`,
    ),
    "",
    "isolation modes:",
    ...ISOLATION_MODES.map((m) => `  ${r.modes[m].available ? "yes" : "no "}  ${m}: ${r.modes[m].reason}`),
    ...ISOLATION_MODES.flatMap((m) => (r.modes[m].warning ? ["", `WARNING: ${r.modes[m].warning}`] : [])),
  ];
  return lines.join("\n") + "\n";
}
