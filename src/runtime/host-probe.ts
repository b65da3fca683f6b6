import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { access, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { release, tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { vsockUnavailableReason } from "../inference/vsock-transport.js";
import { firecrackerCandidates } from "./cache-dir.js";

/**
 * What this host offers the isolated runtime, found by looking (device nodes, binaries) and, for
 * KVM, by a probe boot: an open `/dev/kvm` says nothing about whether guests run (nested KVM often
 * opens fine and then hangs), so a 64 KiB firmware that writes one byte to QEMU's isa-debug-exit
 * port is booted, and KVM counts as usable only when that byte comes back within the deadline.
 */
export interface HostFacts {
  platform: NodeJS.Platform;
  arch: string;
  kernelRelease: string;
  kvm: DeviceFact;
  vhostVsock: DeviceFact;
  /** Whether this host can open AF_VSOCK sockets (the native addon), which the host end of vhost-vsock needs. */
  vsockSockets: { usable: boolean; detail: string };
  firecracker: BinaryFact;
  qemu: BinaryFact & { microvm: boolean };
  /** The probe boots under KVM and under emulation (TCG); skipped without QEMU or the device. */
  kvmProbe: ProbeFact;
  tcgProbe: ProbeFact;
  /** Launcher or guest markers for the lima and wsl2 providers. */
  launcher: { limactl?: string; wslExe?: string; inLimaGuest: boolean; inWsl2Guest: boolean };
}

export interface DeviceFact {
  path: string;
  present: boolean;
  /** Opening needs read and write; a node the user cannot open is as good as absent. */
  readWrite: boolean;
}

export interface BinaryFact {
  path?: string;
  version?: string;
  /** Why the binary is absent or unusable, or what was found. */
  detail: string;
}

export interface ProbeFact {
  status: "pass" | "fail" | "skipped";
  detail: string;
  ms?: number;
}

export interface ProbeOptions {
  /** Resolve device and system paths under this directory instead of "/" (tests hide hardware). */
  root?: string;
  cacheDir: string;
  /** The search path for qemu-system-x86_64, limactl and wsl.exe (default: $PATH). */
  path?: string;
  /** Deadline of one probe boot. */
  probeTimeoutMs?: number;
}

const PROBE_EXIT_BYTE = 0x2a;
/** isa-debug-exit turns the byte v written to its port into the exit status (v << 1) | 1. */
const PROBE_EXIT_STATUS = (PROBE_EXIT_BYTE << 1) | 1;

/**
 * A 64 KiB BIOS image whose reset vector (the last 16 bytes, at 0xFFFFFFF0) runs
 * `mov al, 0x2a; out 0xf4, al; hlt; jmp $`: the smallest guest that proves instructions execute.
 */
export function probeFirmware(): Buffer {
  const rom = Buffer.alloc(64 * 1024, 0xf4);
  Buffer.from([0xb0, PROBE_EXIT_BYTE, 0xe6, 0xf4, 0xf4, 0xeb, 0xfe]).copy(rom, rom.length - 16);
  return rom;
}

interface Completed {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

/** Run a command with a hard deadline (SIGKILL when it passes); never throws for a failed run. */
export function runBounded(cmd: string, args: string[], timeoutMs: number): Promise<Completed> {
  return new Promise((resolve) => {
    const started = performance.now();
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.stdout.on("data", (d: Buffer) => (stdout = (stdout + d.toString()).slice(-8192)));
    child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8192)));
    const done = (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut, ms: Math.round(performance.now() - started) });
    };
    child.on("error", (err) => {
      stderr += err.message;
      done(null, null);
    });
    child.on("close", done);
  });
}

export async function deviceFact(path: string): Promise<DeviceFact> {
  try {
    await stat(path);
  } catch {
    return { path, present: false, readWrite: false };
  }
  try {
    await access(path, constants.R_OK | constants.W_OK);
    return { path, present: true, readWrite: true };
  } catch {
    return { path, present: true, readWrite: false };
  }
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    const st = await stat(path);
    if (!st.isFile()) return false;
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first executable `name` on the search path. */
export async function findOnPath(
  name: string,
  searchPath = process.env.PATH ?? "",
): Promise<string | undefined> {
  for (const dir of searchPath.split(delimiter)) {
    if (dir && (await isExecutable(join(dir, name)))) return join(dir, name);
  }
  return undefined;
}

function firstLine(text: string): string {
  return (
    text
      .split("\n")
      .find((l) => l.trim())
      ?.trim() ?? ""
  );
}

async function firecrackerFact(cacheDir: string, root: string): Promise<BinaryFact> {
  const candidates = firecrackerCandidates(cacheDir, root);
  for (const path of candidates) {
    if (!(await isExecutable(path))) continue;
    const run = await runBounded(path, ["--version"], 5000);
    if (run.code === 0) return { path, version: firstLine(run.stdout), detail: `found at ${path}` };
    return { path, detail: `${path} does not run (--version exited ${run.code ?? run.signal})` };
  }
  return { detail: `not found (looked in ${candidates.join(", ")})` };
}

async function qemuFact(searchPath: string): Promise<BinaryFact & { microvm: boolean }> {
  const path = await findOnPath("qemu-system-x86_64", searchPath);
  if (!path)
    return {
      microvm: false,
      detail: "qemu-system-x86_64 not on PATH (Debian: apt-get install qemu-system-x86)",
    };
  const version = await runBounded(path, ["--version"], 5000);
  const machines = await runBounded(path, ["-machine", "help"], 5000);
  const microvm = /^microvm\s/m.test(machines.stdout);
  return {
    path,
    version: firstLine(version.stdout),
    microvm,
    detail: microvm ? `found at ${path}` : `${path} lacks the microvm machine type`,
  };
}

/** AF_VSOCK on this host, through the native addon. */
function vsockSocketsFact(): HostFacts["vsockSockets"] {
  const why = vsockUnavailableReason();
  return why ? { usable: false, detail: why } : { usable: true, detail: "AF_VSOCK sockets open" };
}

/** Boot the probe firmware under `accel`; pass only when the guest's exit byte comes back in time. */
export async function probeBoot(qemu: string, accel: "kvm" | "tcg", timeoutMs: number): Promise<ProbeFact> {
  const dir = await mkdtemp(join(tmpdir(), "enclave-probe-"));
  try {
    const bios = join(dir, "probe.rom");
    await writeFile(bios, probeFirmware());
    const run = await runBounded(
      qemu,
      [
        ...["-machine", `microvm,accel=${accel}`, "-cpu", accel === "kvm" ? "host" : "max"],
        ...["-m", "16", "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none", "-nic", "none"],
        ...["-bios", bios, "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"],
      ],
      timeoutMs,
    );
    if (run.code === PROBE_EXIT_STATUS) {
      return { status: "pass", detail: `probe guest ran under ${accel} in ${run.ms} ms`, ms: run.ms };
    }
    if (run.timedOut) {
      return { status: "fail", detail: `probe guest under ${accel} did not finish within ${timeoutMs} ms` };
    }
    const why = firstLine(run.stderr.replace(/^qemu-system-x86_64: /gm, "")) || `exit status ${run.code}`;
    return { status: "fail", detail: `probe guest under ${accel} failed: ${why}` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function launcherFacts(
  root: string,
  searchPath: string,
  kernelRelease: string,
): Promise<HostFacts["launcher"]> {
  return {
    limactl: await findOnPath("limactl", searchPath),
    wslExe: await findOnPath("wsl.exe", searchPath),
    // Lima mounts its cloud-init data here in every guest it launches.
    inLimaGuest: await exists(join(root, "mnt/lima-cidata")),
    // WSL2's kernel names itself: "...-microsoft-standard-WSL2".
    inWsl2Guest: /microsoft-standard-wsl2/i.test(kernelRelease),
  };
}

export async function probeHost(options: ProbeOptions): Promise<HostFacts> {
  const root = options.root ?? "/";
  const searchPath = options.path ?? process.env.PATH ?? "";
  const timeoutMs = options.probeTimeoutMs ?? 10_000;
  const kernelRelease = release();
  const kvm = await deviceFact(join(root, "dev/kvm"));
  const qemu = await qemuFact(searchPath);
  const skipped = (detail: string): ProbeFact => ({ status: "skipped", detail });
  let kvmProbe: ProbeFact;
  let tcgProbe: ProbeFact;
  if (!qemu.path || !qemu.microvm) {
    kvmProbe = tcgProbe = skipped("no QEMU with the microvm machine to boot the probe");
  } else {
    tcgProbe = await probeBoot(qemu.path, "tcg", timeoutMs);
    kvmProbe = kvm.readWrite
      ? await probeBoot(qemu.path, "kvm", timeoutMs)
      : skipped(
          kvm.present ? `${kvm.path} is not readable and writable by this user` : `${kvm.path} is absent`,
        );
  }
  return {
    platform: process.platform,
    arch: process.arch,
    kernelRelease,
    kvm,
    vhostVsock: await deviceFact(join(root, "dev/vhost-vsock")),
    vsockSockets: vsockSocketsFact(),
    firecracker: await firecrackerFact(options.cacheDir, root),
    qemu,
    kvmProbe,
    tcgProbe,
    launcher: await launcherFacts(root, searchPath, kernelRelease),
  };
}
