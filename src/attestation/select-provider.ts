import { EnclaveError } from "../errors.js";
import type { AttestationErrorCode } from "./errors.js";
import {
  detectCapabilities,
  type Capabilities,
  type DetectOptions,
  type TeeCapability,
} from "./capabilities.js";
import {
  ConfigfsTsmProvider,
  DEFAULT_TSM_REPORT_ROOT,
  type ConfigfsTsmOptions,
} from "./providers/configfs-tsm.js";
import { DEFAULT_GRAMINE_ROOT, GramineSgxProvider } from "./providers/gramine-sgx.js";
import { DEFAULT_NSM_DEVICE, DevNsmDevice, NitroNsmProvider } from "./providers/nitro-nsm.js";
import type { EvidenceProvider } from "./providers/provider.js";
import { InsecureProvider, SimulatedProvider, type SoftwareProviderOptions } from "./providers/software.js";
import { join } from "node:path";

export interface SelectOptions {
  simulation?: boolean;
  insecure?: boolean;
  /** Pre-computed capabilities (else detected with `detect`). */
  capabilities?: Capabilities;
  detect?: DetectOptions;
  tsm?: Omit<ConfigfsTsmOptions, "root" | "fs">;
  software?: SoftwareProviderOptions;
}

export interface Selection {
  provider: EvidenceProvider;
  capabilities: Capabilities;
  /** Why this provider was chosen, for logs and the CLI. */
  reason: string;
}

/** No usable TEE and neither --simulation nor --insecure: code NO_TEE (or TEE_UNSUPPORTED). */
export class NoTeeError extends EnclaveError<AttestationErrorCode> {
  readonly capabilities: Capabilities;
  constructor(code: "NO_TEE" | "TEE_UNSUPPORTED", message: string, capabilities: Capabilities) {
    super(code, message);
    this.capabilities = capabilities;
  }
}

const ADVICE = "pass --simulation for a local simulation or --insecure to run without hardware protection";

function describeUnusable(t: TeeCapability): string {
  const found = t.interfaces.filter((i) => i.found).map((i) => `${i.path}: ${i.note}`);
  return `${t.kind} (${found.join("; ")})`;
}

/**
 * Pick the evidence provider: collectable hardware first (SNP, TDX, SGX in that order: the CPU TEE
 * is the primary evidence; GPU evidence accompanies it); else simulated with `simulation`; else
 * insecure with `insecure`; else a typed error naming what was checked.
 */
export async function selectProvider(options: SelectOptions = {}): Promise<Selection> {
  const caps = options.capabilities ?? (await detectCapabilities(options.detect));
  const byKind = new Map(caps.tees.map((t) => [t.kind, t]));
  const root = options.detect?.root;
  const tsmRoot = options.detect?.tsmRoot ?? (root ? join(root, DEFAULT_TSM_REPORT_ROOT) : undefined);

  for (const kind of ["snp", "tdx"] as const) {
    if (byKind.get(kind)?.collectable) {
      const provider = new ConfigfsTsmProvider(kind, {
        ...options.tsm,
        root: tsmRoot,
        fs: options.detect?.tsmFs,
      });
      return { provider, capabilities: caps, reason: `${kind} hardware detected: ${provider.description}` };
    }
  }
  if (byKind.get("sgx")?.collectable) {
    const gramineRoot = options.detect?.gramineRoot ?? (root ? join(root, DEFAULT_GRAMINE_ROOT) : undefined);
    const provider = new GramineSgxProvider({ root: gramineRoot });
    return { provider, capabilities: caps, reason: `sgx hardware detected: ${provider.description}` };
  }
  if (byKind.get("nitro")?.collectable) {
    const device = new DevNsmDevice(root ? join(root, DEFAULT_NSM_DEVICE) : DEFAULT_NSM_DEVICE);
    const provider = new NitroNsmProvider(device);
    return { provider, capabilities: caps, reason: `nitro enclave detected: ${provider.description}` };
  }

  const unusable = caps.tees.filter((t) => t.present && !t.collectable);
  const note = unusable.length
    ? `TEE hardware found but not usable from Node: ${unusable.map(describeUnusable).join("; ")}`
    : "no TEE hardware detected";

  if (options.simulation) {
    return {
      provider: new SimulatedProvider(options.software),
      capabilities: caps,
      reason: `--simulation: ${note}; evidence is SIMULATED (no hardware protection)`,
    };
  }
  if (options.insecure) {
    return {
      provider: new InsecureProvider(options.software),
      capabilities: caps,
      reason: `--insecure: ${note}; evidence is INSECURE (no hardware protection)`,
    };
  }
  if (unusable.length) {
    throw new NoTeeError("TEE_UNSUPPORTED", `${note}; ${ADVICE}`, caps);
  }
  throw new NoTeeError(
    "NO_TEE",
    `no TEE hardware detected (checked ${caps.checked.join(", ")}); ${ADVICE}`,
    caps,
  );
}
