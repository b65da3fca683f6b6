import type { Evidence } from "../evidence.js";
import type { EvidenceKind } from "../types.js";
import { ProviderError, type EvidenceProvider } from "./provider.js";

/**
 * Interfaces that exist on the machine but cannot be driven from Node without a native addon: they
 * need an ioctl (or a vendor library) that Node's fs API cannot issue. Rather than pretend, collect()
 * fails with PROVIDER_UNSUPPORTED and says what would work instead.
 */
export const UNSUPPORTED_INTERFACES = {
  "sev-guest": {
    kind: "snp",
    device: "/dev/sev-guest",
    why: "the SNP_GET_REPORT / SNP_GET_EXT_REPORT ioctls cannot be issued from Node",
    instead:
      "use a kernel with configfs-tsm (6.7+, CONFIG_TSM_REPORTS) and mount configfs at /sys/kernel/config, " +
      "or collect with `snpguest report` and pass the file to `enclave verify`",
  },
  "tdx-guest": {
    kind: "tdx",
    device: "/dev/tdx_guest",
    why: "TDX_CMD_GET_REPORT0 is an ioctl, and turning the TD report into a quote needs the quote generation service",
    instead:
      "use a kernel with configfs-tsm (6.7+) and a configured quote generation service, " +
      "or collect with Intel's tdx-attest tooling and pass the quote to `enclave verify`",
  },
  nsm: {
    kind: "nitro",
    device: "/dev/nsm",
    why: "the Nitro Secure Module is reached only through an ioctl carrying CBOR requests",
    instead:
      "collect the attestation document with the aws-nitro-enclaves-nsm-api helper (nsm-cli) " +
      "and pass it to `enclave verify`",
  },
  "nvidia-cc": {
    kind: "nvidia",
    device: "/proc/driver/nvidia",
    why: "GPU attestation reports come from NVML (nvmlDeviceGetConfComputeGpuAttestationReport), a native library",
    instead:
      "collect the report with NVIDIA's nvtrust local GPU verifier tooling and pass it to `enclave verify` " +
      "together with the GPU certificate chain (--cert)",
  },
} as const satisfies Record<string, { kind: EvidenceKind; device: string; why: string; instead: string }>;

export type UnsupportedInterface = keyof typeof UNSUPPORTED_INTERFACES;

export class UnsupportedInterfaceProvider implements EvidenceProvider {
  readonly kind: EvidenceKind;
  readonly label = "HARDWARE" as const;
  readonly description: string;
  private readonly iface: UnsupportedInterface;

  constructor(iface: UnsupportedInterface, devicePath?: string) {
    const info = UNSUPPORTED_INTERFACES[iface];
    this.iface = iface;
    this.kind = info.kind;
    this.description = `${devicePath ?? info.device} (${iface})`;
  }

  /** Why this interface cannot be used, and what to do instead. */
  get explanation(): string {
    const info = UNSUPPORTED_INTERFACES[this.iface];
    return `${info.why}; ${info.instead}`;
  }

  async collect(_reportData: Uint8Array): Promise<Evidence> {
    throw new ProviderError(
      "PROVIDER_UNSUPPORTED",
      this.description,
      `not supported from Node: ${this.explanation}`,
    );
  }
}
