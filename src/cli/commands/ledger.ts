import { statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { loadDataset } from "../../data/load.js";
import { ValidationError } from "../../errors.js";
import { createAccountant } from "../../privacy/accountant/index.js";
import { BudgetLedger, type LedgerAuditRow } from "../../privacy/budget-ledger.js";
import { EPSILON_HARD_CEILING } from "../../schemas/privacy.js";
import { openDatabase, type Database } from "../../storage/database.js";
import { defaultWorkspace } from "../workspace.js";

interface LedgerFlags {
  workspace?: string;
  dataset?: string;
  json?: boolean;
}

interface ResetFlags extends LedgerFlags {
  reason?: string;
  confirm?: string;
}

export interface LedgerDatasetView {
  dataset: string;
  /** The dataset's accounting delta (null before any step). */
  delta: number | null;
  /** Spent epsilon at that delta (RDP, the halting accountant of `train`). */
  epsilon: number;
  ceiling: number;
  steps: number;
  jobs: {
    job_id: string;
    steps: number;
    reserved: boolean;
    delta: number | null;
    first_at: string;
    last_at: string;
  }[];
}

const MAX_REASON = 500;

function ledgerLocation(db: Database, workspace: string): string {
  return db.kind === "postgres" ? "the PostgreSQL server in DATABASE_URL" : join(workspace, "db");
}

/** A dataset flag is a ledger key, or a dataset file whose records identity is the key. */
async function datasetKey(flag: string): Promise<string> {
  let isFile = false;
  try {
    isFile = statSync(flag).isFile();
  } catch {
    // not a path: a ledger key
  }
  if (!isFile) return flag;
  const file = resolve(flag);
  return (await loadDataset(dirname(file), basename(file))).source.identity;
}

async function withLedger<T>(
  f: LedgerFlags,
  fn: (ledger: BudgetLedger, where: string) => Promise<T>,
): Promise<T> {
  const workspace = resolve(f.workspace ?? defaultWorkspace());
  const db = await openDatabase({ workspace });
  try {
    return await fn(await BudgetLedger.open(db), ledgerLocation(db, workspace));
  } finally {
    await db.close();
  }
}

async function datasetView(ledger: BudgetLedger, key: string): Promise<LedgerDatasetView> {
  const state = await ledger.state(key);
  const jobs = await ledger.jobDetails(key);
  return {
    dataset: key,
    delta: state.delta,
    epsilon: state.delta === null ? 0 : createAccountant("rdp", state.history).getEpsilon(state.delta),
    ceiling: EPSILON_HARD_CEILING,
    steps: state.history.reduce((s, h) => s + h.steps, 0),
    jobs: jobs.map((j) => ({
      job_id: j.jobId,
      steps: j.steps,
      reserved: j.reserved,
      delta: j.delta,
      first_at: j.firstAt,
      last_at: j.lastAt,
    })),
  };
}

function showText(where: string, views: LedgerDatasetView[], audit: LedgerAuditRow[]): string {
  const lines = [`ledger      ${where}`];
  if (views.length === 0) lines.push("            (no budget spent)");
  for (const v of views) {
    lines.push(
      "",
      `dataset     ${v.dataset}`,
      `spent       epsilon ${v.epsilon.toFixed(4)} of the ceiling ${v.ceiling} at delta ${v.delta ?? "-"} (RDP), ${v.steps} steps`,
      `  ${"job".padEnd(38)} ${"steps".padStart(7)}  ${"delta".padEnd(8)} last`,
      ...v.jobs.map(
        (j) =>
          `  ${j.job_id.slice(0, 38).padEnd(38)} ${String(j.steps).padStart(7)}  ${String(j.delta ?? "legacy").padEnd(8)} ${j.last_at}${j.reserved ? " (reservation open or crashed: counted in full)" : ""}`,
      ),
    );
  }
  if (audit.length > 0) {
    lines.push("", "audit");
    for (const a of audit)
      lines.push(`  ${a.at} ${a.action.padEnd(8)} ${a.datasetId} by ${a.operator}: ${a.reason}`);
  }
  return lines.join("\n") + "\n";
}

export function registerLedgerCommand(program: Command): void {
  const ledger = program
    .command("ledger")
    .description("inspect the persistent privacy-budget ledger; reset a dataset's budget (audited)");
  ledger
    .command("show")
    .description("what was spent per dataset and job")
    .option("--workspace <dir>", "workspace holding the ledger (default ~/.enclave/workspace)")
    .option("--dataset <id>", "one dataset: its ledger key, or its data file")
    .option("--json", "print one JSON object")
    .action(async (f: LedgerFlags) => {
      await withLedger(f, async (l, where) => {
        const keys = f.dataset !== undefined ? [await datasetKey(f.dataset)] : await l.datasets();
        const views = await Promise.all(keys.map((k) => datasetView(l, k)));
        const audit = await l.auditLog(f.dataset !== undefined ? keys[0] : undefined);
        process.stdout.write(
          f.json
            ? JSON.stringify({ ledger: where, datasets: views, audit }) + "\n"
            : showText(where, views, audit),
        );
      });
    });
  ledger
    .command("reset")
    .description("give a dataset a fresh budget: an explicit operator action, recorded in the audit log")
    .requiredOption("--dataset <id>", "the dataset: its ledger key, or its data file")
    .requiredOption("--confirm <key>", "the dataset's ledger key again (from `enclave ledger show`)")
    .requiredOption("--reason <text>", `why (kept in the audit log; at most ${MAX_REASON} characters)`)
    .option("--workspace <dir>", "workspace holding the ledger (default ~/.enclave/workspace)")
    .option("--json", "print one JSON object")
    .action(async (f: ResetFlags) => {
      const key = await datasetKey(f.dataset!);
      const reason = (f.reason ?? "").trim();
      const issues = [];
      if (f.confirm !== key)
        issues.push({ path: "--confirm", rule: "must repeat the dataset's ledger key exactly" });
      if (reason.length === 0 || reason.length > MAX_REASON)
        issues.push({ path: "--reason", rule: `must be 1 to ${MAX_REASON} characters` });
      if (issues.length > 0) throw new ValidationError("ledger reset", issues);
      await withLedger(f, async (l, where) => {
        const before = await datasetView(l, key);
        const audit = await l.reset(key, reason, {
          epsilon_before: before.epsilon,
          delta: before.delta,
          steps: before.steps,
          jobs: before.jobs.length,
        });
        process.stdout.write(
          f.json
            ? JSON.stringify({ ledger: where, dataset: key, audit_id: audit, before }) + "\n"
            : `reset       ${key}: epsilon ${before.epsilon.toFixed(4)} over ${before.steps} steps no longer counts\naudit       entry ${audit} in ${where} (enclave ledger show)\n`,
        );
      });
    });
}
