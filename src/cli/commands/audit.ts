import { X509Certificate } from "node:crypto";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { readChain } from "../../audit/chain.js";
import { AUDIT_ANCHOR_FILE } from "../../audit/coordinator-audit.js";
import { crossCheck } from "../../audit/cross-check.js";
import { pemKeySha256, type AuditEntry } from "../../audit/entry.js";
import { entryLine, parseJsonl } from "../../audit/jsonl.js";
import { verifyChain, type ChainVerdict } from "../../audit/verify.js";
import { EnclaveError } from "../../errors.js";
import { openDatabase } from "../../storage/database.js";
import { readRegularFile } from "../../storage/regular-file.js";
import { ExitCode } from "../exit-codes.js";

const MAX_EXPORT_BYTES = 1024 * 1024 * 1024;
const MAX_SMALL_FILE = 64 * 1024;

/** Every entry of the chain in a workspace's database (PGlite under W/db, or DATABASE_URL). */
async function workspaceEntries(workspace: string): Promise<AuditEntry[]> {
  const dir = resolve(workspace);
  if (!process.env.DATABASE_URL && !existsSync(join(dir, "db")))
    throw new EnclaveError(
      "AUDIT_NOT_FOUND",
      "--workspace: no database in this workspace (no <workspace>/db)",
    );
  const db = await openDatabase({ workspace: dir });
  try {
    const [{ t }] = await db.query<{ t: string | null }>("select to_regclass('audit_entries')::text as t");
    if (!t)
      throw new EnclaveError(
        "AUDIT_NOT_FOUND",
        "--workspace: this workspace's database holds no audit chain",
      );
    const out: AuditEntry[] = [];
    for await (const e of readChain(db)) out.push(e);
    return out;
  } finally {
    await db.close();
  }
}

async function fileEntries(file: string, flag: string): Promise<unknown[]> {
  const text = (await readRegularFile(file, flag, MAX_EXPORT_BYTES, "AUDIT_FILE_INVALID")).toString("utf8");
  return parseJsonl(text);
}

async function anchorOf(path: string | undefined): Promise<AuditEntry | undefined> {
  if (!path || !existsSync(path)) return undefined;
  const text = (
    await readRegularFile(path, "the anchor file", MAX_SMALL_FILE, "AUDIT_FILE_INVALID")
  ).toString("utf8");
  const [entry] = parseJsonl(text);
  if (!entry) throw new EnclaveError("AUDIT_FILE_INVALID", "the anchor file is not one audit entry");
  return entry as AuditEntry;
}

async function pinnedOf(cert: string | undefined, flag = "--cert"): Promise<string | undefined> {
  if (!cert) return undefined;
  const pem = (await readRegularFile(cert, flag, MAX_SMALL_FILE)).toString("utf8");
  try {
    return pemKeySha256(pem);
  } catch {
    throw new EnclaveError("INPUT_INVALID", `${flag}: not a PEM certificate or public key`);
  }
}

/**
 * A site chain's verdict, pinned to the site's certificate when given: its key must sign every
 * head, and the certificate must name the site whose chain it is.
 */
async function siteChainVerdict(site: AuditEntry[], certPath: string | undefined): Promise<ChainVerdict> {
  const verdict = verifyChain(site, { pinnedSigner: await pinnedOf(certPath, "--site-cert") });
  if (!certPath || !verdict.intact) return verdict;
  const pem = (await readRegularFile(certPath, "--site-cert", MAX_SMALL_FILE)).toString("utf8");
  let cn: string | undefined;
  try {
    cn = /(?:^|\n)CN=([^\n]+)/.exec(new X509Certificate(pem).subject)?.[1];
  } catch {
    return verdict; // a bare public key: pinned by key only
  }
  const opened = site[0];
  if (cn !== undefined && opened && opened.actor !== `site/${cn}`)
    return {
      ...verdict,
      intact: false,
      problem: {
        seq: 1,
        kind: "signer_not_pinned",
        message: "--site-cert names another participant than the site whose chain this is",
      },
    };
  return verdict;
}

function describe(v: ChainVerdict): string {
  if (!v.intact)
    return `audit chain NOT intact: seq ${v.problem!.seq} (${v.problem!.kind}): ${v.problem!.message}\n`;
  const signed = v.signers.length
    ? `, signed through seq ${v.signedThrough} by key sha256:${v.signers.map((s) => s.slice(0, 16)).join(", ")}...`
    : " (an unsigned site chain)";
  return `audit chain intact: ${v.entries} entries, head seq ${v.head!.seq} sha256:${v.head!.hash}${signed}\n`;
}

interface VerifyFlags {
  workspace?: string;
  file?: string;
  anchor?: string;
  cert?: string;
  json?: boolean;
}

export function registerAuditCommand(program: Command): void {
  const audit = program.command("audit").description("verify, export and cross-check audit chains");

  audit
    .command("verify")
    .description(
      "recompute a chain's hashes and head signatures; names the first bad entry; exit 0 only when intact",
    )
    .option("--workspace <dir>", "a coordinator's or agent's workspace (its database, and audit-head.json)")
    .option("--file <jsonl>", "a chain exported with `enclave audit export`")
    .option("--anchor <file>", "with --file: the coordinator's audit-head.json, to detect a cut tail")
    .option("--cert <pem>", "pin the signer: the coordinator's certificate (cert.pem of its kit)")
    .option("--json", "print the verdict as JSON")
    .action(async (f: VerifyFlags) => {
      if (!f.workspace === !f.file)
        throw new EnclaveError("INPUT_INVALID", "give exactly one of --workspace or --file");
      const entries = f.workspace
        ? await workspaceEntries(f.workspace)
        : await fileEntries(f.file!, "--file");
      const anchor = await anchorOf(
        f.anchor ?? (f.workspace ? join(resolve(f.workspace), AUDIT_ANCHOR_FILE) : undefined),
      );
      const verdict = verifyChain(entries, { anchor, pinnedSigner: await pinnedOf(f.cert) });
      process.stdout.write(f.json ? JSON.stringify(verdict) + "\n" : describe(verdict));
      process.exitCode = verdict.intact ? ExitCode.OK : ExitCode.ERROR;
    });

  audit
    .command("export")
    .description("write a workspace's chain to standard output, one entry a line")
    .requiredOption("--workspace <dir>", "a coordinator's or agent's workspace")
    .option("--format <format>", "jsonl (the only format)", "jsonl")
    .action(async (f: { workspace: string; format: string }) => {
      if (f.format !== "jsonl") throw new EnclaveError("INPUT_INVALID", "--format: must be jsonl");
      for (const e of await workspaceEntries(f.workspace)) process.stdout.write(entryLine(e));
    });

  audit
    .command("cross-check")
    .description("compare a site's own chain with the coordinator's exported record, round by round")
    .requiredOption("--site-workspace <dir>", "the agent's workspace")
    .requiredOption("--coordinator-export <jsonl>", "the coordinator's chain from `enclave audit export`")
    .option("--cert <pem>", "pin the coordinator's signer (its cert.pem)")
    .option(
      "--site-cert <pem>",
      "pin the site chain's signer: the site's cert.pem (its kit key signs the site's record)",
    )
    .option("--json", "print the result as JSON")
    .action(
      async (f: {
        siteWorkspace: string;
        coordinatorExport: string;
        cert?: string;
        siteCert?: string;
        json?: boolean;
      }) => {
        const site = await workspaceEntries(f.siteWorkspace);
        const coordinator = await fileEntries(f.coordinatorExport, "--coordinator-export");
        const siteVerdict = await siteChainVerdict(site, f.siteCert);
        const coordVerdict = verifyChain(coordinator, { pinnedSigner: await pinnedOf(f.cert) });
        const result = crossCheck(site, coordinator as AuditEntry[]);
        const ok = siteVerdict.intact && coordVerdict.intact && result.consistent;
        if (f.json) {
          process.stdout.write(
            JSON.stringify({
              ...result,
              consistent: ok,
              consistent_records: result.consistent,
              site_chain: siteVerdict,
              coordinator_chain: coordVerdict,
            }) + "\n",
          );
        } else {
          process.stdout.write(
            `site chain: ${describe(siteVerdict)}coordinator chain: ${describe(coordVerdict)}`,
          );
          for (const p of result.problems)
            process.stdout.write(`MISMATCH job ${p.job_id} ${p.chain} seq ${p.seq}: ${p.message}\n`);
          process.stdout.write(
            ok
              ? `consistent: site ${result.site} released ${result.released} update(s), the coordinator recorded the same ${result.received}\n`
              : `NOT consistent: ${result.problems.length} mismatch(es) for site ${result.site || "(unknown)"}\n`,
          );
        }
        process.exitCode = ok ? ExitCode.OK : ExitCode.ERROR;
      },
    );
}
