import { readRegularFile } from "../../storage/regular-file.js";
import type { Command } from "commander";
import { ValidationError } from "../../errors.js";
import { appraiseEvidence, type Appraisal } from "../../attestation/appraise.js";
import { decodeEvidenceText } from "../../attestation/evidence-kind.js";
import { pemToDerList } from "../../attestation/pki/index.js";
import { defaultTrustPolicy, loadTrustPolicy } from "../../attestation/policy/load.js";
import type { EvidenceKind } from "../../attestation/types.js";

const MAX_INPUT_BYTES = 4 * 1024 * 1024;
const KINDS = ["snp", "tdx", "sgx", "nitro", "nvidia", "simulated", "insecure"] as const;

export interface VerifyCommandOptions {
  kind?: string;
  cert?: string[];
  collateral?: string;
  policy?: string;
  at?: string;
  json?: boolean;
  reportData?: string;
  nonce?: string;
  publicKey?: string;
}

async function readInput(path: string, what: string): Promise<Buffer> {
  return readRegularFile(path, what, MAX_INPUT_BYTES);
}

function hexOption(value: string | undefined, path: string, bytes?: number): Uint8Array | undefined {
  if (value === undefined) return undefined;
  const v = value.startsWith("0x") ? value.slice(2) : value;
  if (!/^([0-9a-fA-F]{2})+$/.test(v) || (bytes !== undefined && v.length !== bytes * 2)) {
    throw new ValidationError("verify options", [
      { path, rule: bytes ? `must be ${bytes} bytes of hex` : "must be an even number of hex digits" },
    ]);
  }
  return new Uint8Array(Buffer.from(v, "hex"));
}

/** PEM (one or more certificates) or a single DER certificate. */
async function readCertificates(files: string[]): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (const [i, file] of files.entries()) {
    const data = await readInput(file, `--cert #${i + 1}`);
    if (data.includes("-----BEGIN")) {
      const ders = pemToDerList(data.toString("latin1"));
      if (ders.length === 0) {
        throw new ValidationError("verify options", [
          { path: `cert[${i}]`, rule: "no PEM CERTIFICATE block" },
        ]);
      }
      out.push(...ders);
    } else {
      out.push(new Uint8Array(data));
    }
  }
  return out;
}

function parseAt(value: string | undefined): Date {
  if (value === undefined) return new Date();
  const ok = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(value);
  const d = new Date(value);
  if (!ok || Number.isNaN(d.getTime())) {
    throw new ValidationError("verify options", [
      { path: "at", rule: "must be an ISO 8601 time, e.g. 2025-01-31T12:00:00Z" },
    ]);
  }
  return d;
}

/** Verify one evidence file as `enclave verify` does; returns the appraisal (no printing). */
export async function verifyEvidenceFile(file: string, opts: VerifyCommandOptions = {}): Promise<Appraisal> {
  if (opts.kind !== undefined && !(KINDS as readonly string[]).includes(opts.kind)) {
    throw new ValidationError("verify options", [
      { path: "kind", rule: `must be one of ${KINDS.join(", ")}` },
    ]);
  }
  const raw = await readInput(file, "evidence file");
  const bytes = decodeEvidenceText(new Uint8Array(raw));
  const certificates = await readCertificates(opts.cert ?? []);
  let collateral: unknown;
  if (opts.collateral !== undefined) {
    const text = (await readInput(opts.collateral, "collateral file")).toString("utf8");
    try {
      collateral = JSON.parse(text);
    } catch {
      throw new ValidationError("verify options", [{ path: "collateral", rule: "must be a JSON file" }]);
    }
  }
  const policy = opts.policy !== undefined ? await loadTrustPolicy(opts.policy) : defaultTrustPolicy();
  const expectedReportData = hexOption(opts.reportData, "report-data", 64);
  const nonce = hexOption(opts.nonce, "nonce", 32);
  const publicKey = hexOption(opts.publicKey, "public-key");
  if ((nonce === undefined) !== (publicKey === undefined)) {
    throw new ValidationError("verify options", [
      { path: "nonce", rule: "--nonce and --public-key go together" },
    ]);
  }
  if (nonce && expectedReportData) {
    throw new ValidationError("verify options", [
      { path: "report-data", rule: "give either --report-data or --nonce/--public-key" },
    ]);
  }
  return appraiseEvidence(bytes, {
    policy,
    at: parseAt(opts.at),
    kind: opts.kind as EvidenceKind | undefined,
    certificates,
    collateral,
    ...(nonce && publicKey ? { binding: { nonce, publicKey } } : {}),
    ...(expectedReportData ? { expectedReportData } : {}),
    // Inspecting a file offline: without a challenge, say that freshness was not checked.
    requireFreshness: false,
  });
}

/** The `--json` shape: { trusted, kind, checks, claims } plus the specification's report. */
export function verificationJson(a: Appraisal): Record<string, unknown> {
  return {
    trusted: a.trusted,
    kind: a.kind,
    checks: a.result.checks.map((c) => ({ name: c.name, status: c.status, detail: c.detail })),
    claims: a.result.claims,
    report: a.report,
  };
}

function claimLines(claims: object, prefix = "  "): string[] {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(claims)) {
    if (v === undefined) continue;
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      lines.push(`${prefix}${k}:`);
      lines.push(...claimLines(v, prefix + "  "));
    } else {
      lines.push(`${prefix}${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`);
    }
  }
  return lines;
}

export function formatVerification(file: string, a: Appraisal): string {
  const mark = { pass: "PASS", fail: "FAIL", skipped: "SKIP", warn: "WARN" } as const;
  const lines = [
    `evidence: ${file}`,
    `kind:     ${a.kind} (${a.kindSource})`,
    `verdict:  ${a.trusted ? "TRUSTED" : "NOT TRUSTED"}`,
    "",
    "checks:",
    ...a.result.checks.map((c) => `  ${mark[c.status]}  ${c.name}: ${c.detail}`),
    "",
    "report:",
    ...claimLines(a.report as unknown as Record<string, unknown>),
    "",
    "claims:",
    ...claimLines(a.result.claims),
  ];
  return lines.join("\n") + "\n";
}

export function registerVerifyCommand(program: Command): void {
  program
    .command("verify")
    .description(
      "verify an attestation evidence file (SNP, TDX, SGX, Nitro, NVIDIA GPU, simulated); exit 0 only when trusted",
    )
    .argument("<file>", "evidence file (binary, or hex/base64 text)")
    .option("--kind <kind>", `evidence kind (${KINDS.join("|")}); detected from the bytes when omitted`)
    .option(
      "--cert <file>",
      "certificate file (PEM or DER): the SNP VCEK/VLEK (+ ASK/ARK) or the GPU certificate chain; repeatable",
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option(
      "--collateral <file>",
      "Intel collateral JSON for SGX/TDX (TCB info, QE identity, CRLs, issuer chains)",
    )
    .option(
      "--policy <file>",
      "trust policy (JSON or YAML); default: every check, no measurement allow-lists",
    )
    .option("--at <time>", "validation time, ISO 8601 (default: now)")
    .option("--report-data <hex>", "the 64 bytes the evidence's report data must carry")
    .option("--nonce <hex>", "the 32-byte challenge bound into the report data (with --public-key)")
    .option("--public-key <hex>", "the node public key bound into the report data (with --nonce)")
    .option("--json", "print { trusted, kind, checks, claims, report } as JSON")
    .action(async (file: string, opts: VerifyCommandOptions) => {
      const appraisal = await verifyEvidenceFile(file, opts);
      process.stdout.write(
        opts.json
          ? JSON.stringify(verificationJson(appraisal), null, 2) + "\n"
          : formatVerification(file, appraisal),
      );
      if (!appraisal.trusted) process.exitCode = 1;
    });
}
