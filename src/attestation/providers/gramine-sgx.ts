import * as fsp from "node:fs/promises";
import { join } from "node:path";
import type { Evidence } from "../evidence.js";
import { reportDataField } from "../evidence-kind.js";
import { checkReportData, osReason, ProviderError, type EvidenceProvider } from "./provider.js";

/** Gramine's pseudo-filesystem for SGX attestation inside the enclave. */
export const DEFAULT_GRAMINE_ROOT = "/dev/attestation";

export interface GramineFs {
  readFile(path: string): Promise<Uint8Array>;
  writeFile(path: string, data: Uint8Array): Promise<void>;
}

const nodeFs: GramineFs = {
  readFile: async (p) => new Uint8Array(await fsp.readFile(p)),
  writeFile: (p, d) => fsp.writeFile(p, d),
};

/**
 * SGX DCAP quotes through Gramine: write the 64 bytes to `user_report_data`, read `quote`.
 * `attestation_type` must say "dcap" (EPID quotes are end-of-life and not verified here).
 */
export class GramineSgxProvider implements EvidenceProvider {
  readonly kind = "sgx" as const;
  readonly label = "HARDWARE" as const;
  readonly description: string;
  private readonly root: string;
  private readonly fs: GramineFs;
  private readonly now: () => Date;

  constructor(options: { root?: string; fs?: GramineFs; now?: () => Date } = {}) {
    this.root = options.root ?? DEFAULT_GRAMINE_ROOT;
    this.fs = options.fs ?? nodeFs;
    this.now = options.now ?? (() => new Date());
    this.description = `Gramine SGX (${this.root})`;
  }

  async collect(reportData: Uint8Array): Promise<Evidence> {
    checkReportData(this.description, reportData);
    let quote: Uint8Array;
    try {
      const type = Buffer.from(await this.fs.readFile(join(this.root, "attestation_type")))
        .toString("utf8")
        .trim();
      if (type !== "dcap") {
        throw new ProviderError(
          "PROVIDER_UNSUPPORTED",
          this.description,
          `attestation_type is ${JSON.stringify(type.slice(0, 16))}; set sgx.remote_attestation = "dcap" in the Gramine manifest`,
        );
      }
      await this.fs.writeFile(join(this.root, "user_report_data"), reportData);
      quote = await this.fs.readFile(join(this.root, "quote"));
    } catch (err) {
      if (err instanceof ProviderError) throw err;
      throw new ProviderError(
        "PROVIDER_FAILED",
        this.description,
        `quote generation failed (${osReason(err)})`,
        {
          cause: err,
        },
      );
    }
    if (!Buffer.from(reportDataField("sgx", quote)).equals(Buffer.from(reportData))) {
      throw new ProviderError(
        "REPORT_DATA_MISMATCH",
        this.description,
        "the returned quote does not carry the requested report data",
      );
    }
    return { kind: "sgx", bytes: quote, collectedAt: this.now(), label: "HARDWARE" };
  }
}
