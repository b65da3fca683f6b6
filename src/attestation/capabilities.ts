import { execFile } from "node:child_process";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import {
  DEFAULT_TSM_REPORT_ROOT,
  nodeTsmFs,
  probeTsmProvider,
  type TsmFs,
} from "./providers/configfs-tsm.js";
import { DEFAULT_GRAMINE_ROOT } from "./providers/gramine-sgx.js";
import { nsmIoctlUnavailableReason } from "./providers/nitro-nsm.js";
import type { EvidenceKind } from "./types.js";

/** One way of reaching a TEE that we looked for. */
export interface TeeInterface {
  name: string;
  path: string;
  /** It exists on this machine. */
  found: boolean;
  /** We can collect evidence through it from Node. */
  usable: boolean;
  note: string;
}

export interface TeeCapability {
  kind: Exclude<EvidenceKind, "simulated" | "insecure">;
  /** Some sign of this TEE exists (a device node, a provider, a meaningful CPU flag). */
  present: boolean;
  /** At least one interface is usable: evidence can be collected. */
  collectable: boolean;
  interfaces: TeeInterface[];
}

export interface Capabilities {
  tees: TeeCapability[];
  /** Everything inspected, for the "checked ..." part of error messages. */
  checked: string[];
  /** Relevant CPU flags from /proc/cpuinfo (e.g. tdx_guest, sev_snp, hypervisor). */
  cpuFlags: string[];
}

export type CommandRunner = (cmd: string, args: string[]) => Promise<{ code: number; stdout: string }>;

export interface DetectOptions {
  /** Filesystem root that absolute device paths are resolved under (tests point it at a temp dir). */
  root?: string;
  /** configfs-tsm report directory; default `<root>/sys/kernel/config/tsm/report`. */
  tsmRoot?: string;
  tsmFs?: TsmFs;
  /** Gramine attestation directory; default `<root>/dev/attestation`. */
  gramineRoot?: string;
  /** Runs `nvidia-smi`; pass `null` to skip external commands entirely. */
  runCommand?: CommandRunner | null;
}

const defaultRunner: CommandRunner = (cmd, args) =>
  new Promise((resolve) => {
    execFile(cmd, args, { timeout: 5000, maxBuffer: 256 * 1024 }, (err, stdout) => {
      const code = err
        ? typeof (err as { code?: unknown }).code === "number"
          ? (err as { code: number }).code
          : -1
        : 0;
      resolve({ code, stdout: String(stdout ?? "") });
    });
  });

async function exists(path: string): Promise<boolean> {
  try {
    await fsp.access(path);
    return true;
  } catch {
    return false;
  }
}

const FLAGS_OF_INTEREST = ["hypervisor", "sev", "sev_es", "sev_snp", "tdx_guest", "sgx", "sgx_lc"];

async function cpuFlags(path: string): Promise<string[]> {
  try {
    const text = await fsp.readFile(path, "utf8");
    const line = text.split("\n").find((l) => /^flags\s*:/.test(l));
    if (!line) return [];
    const flags = new Set(
      line
        .replace(/^flags\s*:/, "")
        .trim()
        .split(/\s+/),
    );
    return FLAGS_OF_INTEREST.filter((f) => flags.has(f));
  } catch {
    return [];
  }
}

/**
 * What TEE hardware this machine offers and whether we can collect evidence from it. Looks at
 * device nodes, the configfs-tsm provider, Gramine's attestation files, /proc/cpuinfo flags and
 * NVIDIA's confidential-computing mode. Never throws: anything unreadable is reported as a note.
 */
export async function detectCapabilities(options: DetectOptions = {}): Promise<Capabilities> {
  const root = options.root ?? "/";
  const at = (p: string) => join(root, p);
  const checked: string[] = [];
  const look = async (p: string) => {
    checked.push(p);
    return exists(at(p));
  };

  const flags = await cpuFlags(at("/proc/cpuinfo"));
  checked.push("/proc/cpuinfo");

  // configfs-tsm: one provider per kernel, either sev_guest or tdx_guest.
  const tsmRoot = options.tsmRoot ?? (options.root ? at(DEFAULT_TSM_REPORT_ROOT) : DEFAULT_TSM_REPORT_ROOT);
  checked.push(DEFAULT_TSM_REPORT_ROOT);
  let tsm: { provider?: string; note: string };
  try {
    tsm = await probeTsmProvider({ root: tsmRoot, fs: options.tsmFs ?? nodeTsmFs });
  } catch (err) {
    tsm = { note: `probe failed (${(err as Error)?.name ?? "error"})` };
  }
  const tsmInterface = (provider: string): TeeInterface => ({
    name: "configfs-tsm",
    path: DEFAULT_TSM_REPORT_ROOT,
    found: tsm.provider === provider,
    usable: tsm.provider === provider,
    note: tsm.note,
  });

  const sevGuest = await look("/dev/sev-guest");
  const snp: TeeCapability = {
    kind: "snp",
    present: false,
    collectable: false,
    interfaces: [
      tsmInterface("sev_guest"),
      {
        name: "sev-guest device",
        path: "/dev/sev-guest",
        found: sevGuest,
        usable: false,
        note: sevGuest ? "present, but its ioctl cannot be issued from Node (use configfs-tsm)" : "absent",
      },
      {
        name: "cpu flag sev_snp",
        path: "/proc/cpuinfo",
        found: flags.includes("sev_snp") && flags.includes("hypervisor"),
        usable: false,
        note: flags.includes("sev_snp")
          ? flags.includes("hypervisor")
            ? "guest with SEV-SNP active"
            : "SEV-SNP host (a host cannot attest as a guest)"
          : "absent",
      },
    ],
  };

  const tdxGuest = await look("/dev/tdx_guest");
  const tdx: TeeCapability = {
    kind: "tdx",
    present: false,
    collectable: false,
    interfaces: [
      tsmInterface("tdx_guest"),
      {
        name: "tdx_guest device",
        path: "/dev/tdx_guest",
        found: tdxGuest,
        usable: false,
        note: tdxGuest ? "present, but its ioctl cannot be issued from Node (use configfs-tsm)" : "absent",
      },
      {
        name: "cpu flag tdx_guest",
        path: "/proc/cpuinfo",
        found: flags.includes("tdx_guest"),
        usable: false,
        note: flags.includes("tdx_guest") ? "running in a TDX guest" : "absent",
      },
    ],
  };

  const gramineRoot = options.gramineRoot ?? (options.root ? at(DEFAULT_GRAMINE_ROOT) : DEFAULT_GRAMINE_ROOT);
  checked.push(DEFAULT_GRAMINE_ROOT);
  let gramineType = "";
  const gramineQuote = await exists(join(gramineRoot, "quote"));
  if (gramineQuote) {
    try {
      gramineType = (await fsp.readFile(join(gramineRoot, "attestation_type"), "utf8")).trim();
    } catch {
      gramineType = "unreadable";
    }
  }
  const sgxEnclave = await look("/dev/sgx_enclave");
  const sgx: TeeCapability = {
    kind: "sgx",
    present: false,
    collectable: false,
    interfaces: [
      {
        name: "Gramine /dev/attestation",
        path: DEFAULT_GRAMINE_ROOT,
        found: gramineQuote,
        usable: gramineQuote && gramineType === "dcap",
        note: gramineQuote
          ? gramineType === "dcap"
            ? "DCAP quotes available"
            : `attestation_type is not dcap (${JSON.stringify(gramineType.slice(0, 16))})`
          : "absent (not inside a Gramine enclave)",
      },
      {
        name: "sgx_enclave device",
        path: "/dev/sgx_enclave",
        found: sgxEnclave,
        usable: false,
        note: sgxEnclave ? "SGX host: run the agent inside a Gramine enclave to attest" : "absent",
      },
    ],
  };

  const nsm = await look("/dev/nsm");
  const noIoctl = nsm ? nsmIoctlUnavailableReason() : null;
  const nitro: TeeCapability = {
    kind: "nitro",
    present: false,
    collectable: false,
    interfaces: [
      {
        name: "Nitro Secure Module",
        path: "/dev/nsm",
        found: nsm,
        usable: nsm && noIoctl === null,
        note: !nsm
          ? "absent"
          : noIoctl === null
            ? "attestation documents through the NSM ioctl (native addon)"
            : `present, but the NSM ioctl cannot be issued: ${noIoctl}`,
      },
    ],
  };

  const nvidiaProc = await look("/proc/driver/nvidia/gpus");
  let ccNote = "nvidia-smi not run";
  let ccOn = false;
  if (options.runCommand !== null && nvidiaProc) {
    checked.push("nvidia-smi conf-compute -f");
    try {
      const r = await (options.runCommand ?? defaultRunner)("nvidia-smi", ["conf-compute", "-f"]);
      ccOn = r.code === 0 && /CC status:\s*ON/i.test(r.stdout);
      ccNote = r.code === 0 ? (ccOn ? "CC mode ON" : "CC mode not ON") : `nvidia-smi exited ${r.code}`;
    } catch {
      ccNote = "nvidia-smi could not run";
    }
  }
  const nvidia: TeeCapability = {
    kind: "nvidia",
    present: false,
    collectable: false,
    interfaces: [
      {
        name: "NVIDIA confidential computing",
        path: "/proc/driver/nvidia/gpus",
        found: nvidiaProc && ccOn,
        usable: false,
        note: nvidiaProc ? `${ccNote}; GPU reports need NVML, which Node cannot call` : "no NVIDIA driver",
      },
    ],
  };

  const tees = [snp, tdx, sgx, nitro, nvidia];
  for (const t of tees) {
    t.present = t.interfaces.some((i) => i.found);
    t.collectable = t.interfaces.some((i) => i.usable);
  }
  return { tees, checked, cpuFlags: flags };
}
