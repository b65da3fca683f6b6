import { generateKeyPairSync, randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { ValidationError } from "../../errors.js";
import { bindReportData } from "../../attestation/binding.js";
import type { Evidence } from "../../attestation/evidence.js";
import { derToPem } from "../../attestation/pki/index.js";
import { SimulatedProvider, InsecureProvider } from "../../attestation/providers/software.js";
import { rawEd25519PublicKey } from "../../attestation/simulated-evidence.js";
import { selectProvider, type SelectOptions, type Selection } from "../../attestation/select-provider.js";
import { checkOutputFile } from "../output-path.js";

export interface AttestCommandOptions {
  nonce?: string;
  publicKey?: string;
  out?: string;
  simulation?: boolean;
  insecure?: boolean;
}

export interface AttestOutcome {
  selection: Selection;
  evidence: Evidence;
  nonce: Uint8Array;
  publicKey: Uint8Array;
  reportData: Uint8Array;
  /** Files written (evidence, and certificates when the evidence carried any). */
  files: string[];
}

function hexOption(value: string | undefined, path: string, bytes?: number): Uint8Array | undefined {
  if (value === undefined) return undefined;
  const v = value.startsWith("0x") ? value.slice(2) : value;
  if (!/^([0-9a-fA-F]{2})+$/.test(v) || (bytes !== undefined && v.length !== bytes * 2) || v.length > 8192) {
    throw new ValidationError("attest options", [
      { path, rule: bytes ? `must be ${bytes} bytes of hex` : "must be 1..4096 bytes of hex" },
    ]);
  }
  return new Uint8Array(Buffer.from(v, "hex"));
}

/**
 * Detect the TEE, collect evidence whose report data binds the nonce and node key, and write it.
 * The report data is SHA-512("coreason-enclave/attest/v1" || nonce || public key). Without
 * --public-key the simulated/insecure node key is bound, or for hardware a fresh Ed25519 key
 * (printed; its private half is not kept: this command only produces evidence to inspect).
 */
export async function attest(opts: AttestCommandOptions, select: SelectOptions = {}): Promise<AttestOutcome> {
  const nonce = hexOption(opts.nonce, "nonce", 32) ?? new Uint8Array(randomBytes(32));
  const givenKey = hexOption(opts.publicKey, "public-key");
  // An unwritable --out is found before evidence is collected, never after.
  if (opts.out) {
    checkOutputFile(opts.out, "--out");
    checkOutputFile(`${opts.out}.certs.pem`, "--out (its .certs.pem)");
  }
  const selection = await selectProvider({ simulation: opts.simulation, insecure: opts.insecure, ...select });
  const provider = selection.provider;
  const publicKey =
    givenKey ??
    (provider instanceof SimulatedProvider || provider instanceof InsecureProvider
      ? provider.publicKey
      : rawEd25519PublicKey(generateKeyPairSync("ed25519").publicKey));
  const reportData = bindReportData(nonce, publicKey);
  const evidence = await provider.collect(reportData);
  const files: string[] = [];
  if (opts.out) {
    await writeFile(opts.out, evidence.bytes, { mode: 0o644 });
    files.push(opts.out);
    const certs = (evidence.certificates ?? []).filter((c) => c.role !== "CRL");
    if (certs.length > 0) {
      const certFile = `${opts.out}.certs.pem`;
      await writeFile(certFile, certs.map((c) => derToPem(c.der)).join(""), { mode: 0o644 });
      files.push(certFile);
    }
  }
  return { selection, evidence, nonce, publicKey, reportData, files };
}

/**
 * The command that checks the evidence just written. The default trust policy rejects SIMULATED
 * and INSECURE evidence by design, so for those the command says so and allows the label by name
 * in a one-field policy file: a check that works, and that cannot be mistaken for hardware trust.
 */
function checkCommand(label: Evidence["label"], verify: string): string[] {
  if (label !== "SIMULATED" && label !== "INSECURE") return [`check it:    ${verify}`];
  const field = label === "SIMULATED" ? "allow_simulated" : "allow_insecure";
  const file = `allow-${label.toLowerCase()}.json`;
  return [
    `note:        the default trust policy rejects ${label} evidence (no hardware protection): plain \`enclave verify\` reports it UNTRUSTED (exit 1); this check allows the label by name`,
    `check it:    printf '{"${field}": true}\\n' > ${file} && ${verify} --policy ${file}`,
  ];
}

export function registerAttestCommand(program: Command): void {
  program
    .command("attest")
    .description("detect the TEE and collect attestation evidence bound to a nonce and a node key")
    .option("--nonce <hex>", "32-byte challenge to bind (default: random, printed)")
    .option("--public-key <hex>", "node public key to bind (default: the evidence key, or a fresh one)")
    .option("--out <file>", "write the evidence here (certificates to <file>.certs.pem); else print JSON")
    .option("--simulation", "without TEE hardware, produce SIMULATED evidence (development only)")
    .option("--insecure", "without TEE hardware, produce INSECURE evidence (no protection at all)")
    .action(async (opts: AttestCommandOptions) => {
      const r = await attest(opts);
      const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
      const summary = {
        kind: r.evidence.kind,
        label: r.evidence.label,
        provider: r.selection.provider.description,
        reason: r.selection.reason,
        collected_at: r.evidence.collectedAt.toISOString(),
        nonce: hex(r.nonce),
        public_key: hex(r.publicKey),
        report_data: hex(r.reportData),
      };
      if (opts.out) {
        const certArgs = r.files
          .slice(1)
          .map((f) => ` --cert ${f}`)
          .join("");
        process.stdout.write(
          [
            `${r.evidence.label} ${r.evidence.kind} evidence (${r.evidence.bytes.length} bytes) written to ${r.files.join(", ")}`,
            `provider:    ${summary.provider}`,
            `why:         ${summary.reason}`,
            `nonce:       ${summary.nonce}`,
            `public key:  ${summary.public_key}`,
            `report data: ${summary.report_data}`,
            ...checkCommand(
              r.evidence.label,
              `enclave verify ${opts.out}${certArgs} --nonce ${summary.nonce} --public-key ${summary.public_key}`,
            ),
          ].join("\n") + "\n",
        );
      } else {
        const certificates = (r.evidence.certificates ?? []).map((c) => ({
          role: c.role,
          pem: derToPem(c.der),
        }));
        process.stdout.write(
          JSON.stringify(
            { ...summary, evidence_base64: Buffer.from(r.evidence.bytes).toString("base64"), certificates },
            null,
            2,
          ) + "\n",
        );
      }
    });
}
