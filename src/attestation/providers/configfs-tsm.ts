import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import type { Evidence } from "../evidence.js";
import { reportDataField } from "../evidence-kind.js";
import { checkReportData, osReason, ProviderError, type EvidenceProvider } from "./provider.js";
import { parseSnpCertTable } from "./snp-cert-table.js";

/** The Linux configfs-tsm report interface (kernel 6.7+), used by sev-guest and tdx-guest. */
export const DEFAULT_TSM_REPORT_ROOT = "/sys/kernel/config/tsm/report";

/** The file operations the provider needs; injectable so tests can stand in for the kernel. */
export interface TsmFs {
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  readFile(path: string): Promise<Uint8Array>;
  writeFile(path: string, data: Uint8Array | string): Promise<void>;
  exists(path: string): Promise<boolean>;
}

export const nodeTsmFs: TsmFs = {
  mkdir: async (p) => {
    await fsp.mkdir(p);
  },
  rmdir: (p) => fsp.rmdir(p),
  readFile: async (p) => new Uint8Array(await fsp.readFile(p)),
  writeFile: (p, d) => fsp.writeFile(p, d),
  exists: async (p) => {
    try {
      await fsp.access(p);
      return true;
    } catch {
      return false;
    }
  },
};

/** `provider` attribute value -> evidence kind. */
const PROVIDERS = { sev_guest: "snp", tdx_guest: "tdx" } as const;
export type TsmProviderName = keyof typeof PROVIDERS;

export interface ConfigfsTsmOptions {
  root?: string;
  fs?: TsmFs;
  /** SNP VMPL / privilege level to request (0..3); omitted = the kernel's floor. */
  privlevel?: number;
  /** Attempts when a concurrent writer is detected. Default 3. */
  attempts?: number;
  now?: () => Date;
}

function decodeText(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("utf8").trim();
}

/** Read `provider` of a fresh entry (creating and removing it), or undefined when unavailable. */
export async function probeTsmProvider(
  options: { root?: string; fs?: TsmFs } = {},
): Promise<{ provider?: string; note: string }> {
  const root = options.root ?? DEFAULT_TSM_REPORT_ROOT;
  const fs = options.fs ?? nodeTsmFs;
  if (!(await fs.exists(root))) return { note: `${root} absent` };
  const entry = join(root, `coreason-probe-${randomBytes(6).toString("hex")}`);
  try {
    await fs.mkdir(entry);
  } catch (err) {
    return { note: `${root} present but an entry cannot be created (${osReason(err)})` };
  }
  try {
    const provider = decodeText(await fs.readFile(join(entry, "provider")));
    return { provider, note: `${root} provider ${provider}` };
  } catch (err) {
    return { note: `${root} present but provider unreadable (${osReason(err)})` };
  } finally {
    await fs.rmdir(entry).catch(() => undefined);
  }
}

/**
 * Collects an SNP report or a TDX quote through configfs-tsm: create an entry, write `inblob`
 * (and `privlevel`), read `outblob` and `auxblob`, and check `generation` so a concurrent writer
 * to the same entry cannot slip us a report for someone else's input; then remove the entry.
 * The provider also confirms the report-data field of what the kernel returned is what we asked for.
 */
export class ConfigfsTsmProvider implements EvidenceProvider {
  readonly kind: "snp" | "tdx";
  readonly label = "HARDWARE" as const;
  readonly description: string;
  private readonly root: string;
  private readonly fs: TsmFs;
  private readonly options: ConfigfsTsmOptions;

  constructor(kind: "snp" | "tdx", options: ConfigfsTsmOptions = {}) {
    this.kind = kind;
    this.root = options.root ?? DEFAULT_TSM_REPORT_ROOT;
    this.fs = options.fs ?? nodeTsmFs;
    this.options = options;
    const name = kind === "snp" ? "sev_guest" : "tdx_guest";
    this.description = `configfs-tsm (${name}) at ${this.root}`;
    if (
      options.privlevel !== undefined &&
      !(Number.isInteger(options.privlevel) && options.privlevel >= 0 && options.privlevel <= 3)
    ) {
      throw new ProviderError("PROVIDER_FAILED", this.description, "privlevel must be an integer 0..3");
    }
  }

  async collect(reportData: Uint8Array): Promise<Evidence> {
    checkReportData(this.description, reportData);
    const attempts = this.options.attempts ?? 3;
    let last: unknown;
    for (let i = 0; i < attempts; i++) {
      try {
        return await this.collectOnce(reportData);
      } catch (err) {
        last = err;
        if (!(err instanceof ProviderError) || err.code !== "TSM_CONFLICT") throw err;
      }
    }
    throw last;
  }

  private async readGeneration(entry: string): Promise<number> {
    const text = decodeText(await this.fs.readFile(join(entry, "generation")));
    if (!/^[0-9]{1,15}$/.test(text)) {
      throw new ProviderError(
        "PROVIDER_FAILED",
        this.description,
        "generation attribute is not a decimal number",
      );
    }
    return Number(text);
  }

  private async collectOnce(reportData: Uint8Array): Promise<Evidence> {
    const entry = join(this.root, `coreason-${process.pid}-${randomBytes(8).toString("hex")}`);
    try {
      await this.fs.mkdir(entry);
    } catch (err) {
      throw new ProviderError(
        "PROVIDER_FAILED",
        this.description,
        `cannot create a report entry (${osReason(err)})`,
        {
          cause: err,
        },
      );
    }
    try {
      const provider = decodeText(await this.fs.readFile(join(entry, "provider")));
      const kind = (PROVIDERS as Record<string, "snp" | "tdx" | undefined>)[provider];
      if (kind !== this.kind) {
        throw new ProviderError(
          "PROVIDER_FAILED",
          this.description,
          `the kernel's TSM provider is ${JSON.stringify(provider.slice(0, 32))}, not the expected one`,
        );
      }
      const before = await this.readGeneration(entry);
      let writes = 0;
      if (this.options.privlevel !== undefined) {
        await this.fs.writeFile(join(entry, "privlevel"), String(this.options.privlevel));
        writes++;
      }
      await this.fs.writeFile(join(entry, "inblob"), reportData);
      writes++;
      // Each write bumps `generation` by one: anything else means another writer touched our entry.
      const expected = before + writes;
      const outblob = await this.fs.readFile(join(entry, "outblob"));
      let auxblob: Uint8Array = new Uint8Array(0);
      if (this.kind === "snp" && (await this.fs.exists(join(entry, "auxblob")))) {
        auxblob = await this.fs.readFile(join(entry, "auxblob"));
      }
      const after = await this.readGeneration(entry);
      if (after !== expected) {
        throw new ProviderError(
          "TSM_CONFLICT",
          this.description,
          `generation moved from ${before} to ${after} (expected ${expected}): a concurrent writer changed the entry`,
        );
      }
      if (outblob.length === 0) throw new ProviderError("PROVIDER_FAILED", this.description, "empty outblob");
      const got = reportDataField(this.kind, outblob);
      if (!Buffer.from(got).equals(Buffer.from(reportData))) {
        throw new ProviderError(
          "REPORT_DATA_MISMATCH",
          this.description,
          "the returned evidence does not carry the requested report data",
        );
      }
      const evidence: Evidence = {
        kind: this.kind,
        bytes: outblob,
        collectedAt: (this.options.now ?? (() => new Date()))(),
        label: "HARDWARE",
      };
      if (auxblob.length > 0) evidence.certificates = parseSnpCertTable(auxblob);
      return evidence;
    } catch (err) {
      if (err instanceof ProviderError || (err as { code?: string })?.code === "EVIDENCE_MALFORMED")
        throw err;
      throw new ProviderError(
        "PROVIDER_FAILED",
        this.description,
        `report generation failed (${osReason(err)})`,
        {
          cause: err,
        },
      );
    } finally {
      await this.fs.rmdir(entry).catch(() => undefined);
    }
  }
}
