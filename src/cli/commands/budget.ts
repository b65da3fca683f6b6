import type { Command } from "commander";
import { EnclaveError, ValidationError, type FieldIssue } from "../../errors.js";
import { MAX_DELTA } from "../../schemas/privacy.js";
import {
  MAX_NOISE_MULTIPLIER,
  PrvAccountant,
  RdpAccountant,
  isAccountantName,
  type AccountantName,
  type EpsilonBounds,
} from "../../privacy/accountant/index.js";

export interface BudgetCommandOptions {
  sampleRate: string;
  noiseMultiplier: string;
  steps: string;
  delta: string;
  accountant?: string;
  json?: boolean;
}

interface BudgetQuery {
  sampleRate: number;
  noiseMultiplier: number;
  steps: number;
  delta: number;
  accountants: AccountantName[];
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Parse and range-check the flags; every problem is reported, each naming its flag (never its value). */
export function parseBudgetOptions(o: BudgetCommandOptions): BudgetQuery {
  const issues: FieldIssue[] = [];
  const num = (raw: string | undefined, flag: string, ok: (x: number) => boolean, rule: string): number => {
    const x = typeof raw === "string" && DECIMAL.test(raw.trim()) ? Number(raw) : NaN;
    if (!(Number.isFinite(x) && ok(x))) issues.push({ path: flag, rule });
    return x;
  };
  const sampleRate = num(
    o.sampleRate,
    "--sample-rate",
    (x) => x >= 0 && x <= 1,
    "must be a number in [0, 1]",
  );
  const noiseMultiplier = num(
    o.noiseMultiplier,
    "--noise-multiplier",
    (x) => x >= 0 && x <= MAX_NOISE_MULTIPLIER,
    `must be a number in [0, ${MAX_NOISE_MULTIPLIER}]`,
  );
  const steps = num(
    o.steps,
    "--steps",
    (x) => /^\+?\d+$/.test(o.steps.trim()) && Number.isSafeInteger(x),
    "must be a whole number >= 0",
  );
  const delta = num(
    o.delta,
    "--delta",
    (x) => x > 0 && x <= MAX_DELTA,
    `must be a number in (0, ${MAX_DELTA}]`,
  );
  let accountants: AccountantName[] = ["rdp", "prv"];
  if (o.accountant !== undefined) {
    if (isAccountantName(o.accountant)) accountants = [o.accountant];
    else issues.push({ path: "--accountant", rule: 'must be "rdp" or "prv"' });
  }
  if (issues.length > 0) throw new ValidationError("budget options", issues);
  return { sampleRate, noiseMultiplier, steps, delta, accountants };
}

type PrvOutcome = { ok: true; bounds: EpsilonBounds } | { ok: false; code: string; message: string };

export interface BudgetReport {
  sampleRate: number;
  noiseMultiplier: number;
  steps: number;
  delta: number;
  rdp?: { epsilon: number; order: number };
  prv?: PrvOutcome;
}

export function computeBudgetReport(q: BudgetQuery): BudgetReport {
  const history = [{ noiseMultiplier: q.noiseMultiplier, sampleRate: q.sampleRate, steps: q.steps }];
  const report: BudgetReport = {
    sampleRate: q.sampleRate,
    noiseMultiplier: q.noiseMultiplier,
    steps: q.steps,
    delta: q.delta,
  };
  if (q.accountants.includes("rdp")) report.rdp = RdpAccountant.fromHistory(history).getPrivacySpent(q.delta);
  if (q.accountants.includes("prv")) {
    try {
      report.prv = { ok: true, bounds: PrvAccountant.fromHistory(history).getEpsilonBounds(q.delta) };
    } catch (err) {
      // Asked for PRV alone: fail. Shown next to RDP: report why PRV is unavailable.
      if (q.accountants.length === 1 || !(err instanceof EnclaveError)) throw err;
      report.prv = { ok: false, code: err.code, message: err.message };
    }
  }
  return report;
}

/** JSON has no infinity: an unbounded epsilon is written as the string "Infinity", never as null or 0. */
function finiteOrTag(x: number): number | string {
  return Number.isFinite(x) ? x : String(x);
}

function toJson(r: BudgetReport): object {
  const out: Record<string, unknown> = {
    sampleRate: r.sampleRate,
    noiseMultiplier: r.noiseMultiplier,
    steps: r.steps,
    delta: r.delta,
  };
  if (r.rdp) out.rdp = { epsilon: finiteOrTag(r.rdp.epsilon), order: r.rdp.order };
  if (r.prv) {
    out.prv = r.prv.ok
      ? {
          epsilon: finiteOrTag(r.prv.bounds.upper),
          estimate: finiteOrTag(r.prv.bounds.estimate),
          lower: finiteOrTag(r.prv.bounds.lower),
        }
      : { error: { code: r.prv.code, message: r.prv.message } };
  }
  return out;
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(6) : String(x));

function toText(r: BudgetReport): string {
  const lines = [
    `privacy spent by ${r.steps} steps at sample rate ${r.sampleRate}, noise multiplier ${r.noiseMultiplier}`,
    `  delta     ${r.delta}`,
  ];
  if (r.rdp) {
    const order = r.rdp.order === 0 ? "none (no steps)" : String(r.rdp.order);
    lines.push(`  rdp       epsilon ${fmt(r.rdp.epsilon)}  (optimal order ${order})`);
  }
  if (r.prv) {
    lines.push(
      r.prv.ok
        ? `  prv       epsilon ${fmt(r.prv.bounds.upper)}  (upper bound; estimate ${fmt(r.prv.bounds.estimate)}, lower ${fmt(r.prv.bounds.lower)})`
        : `  prv       unavailable [${r.prv.code}]: ${r.prv.message}`,
    );
  }
  if (r.rdp && r.prv?.ok)
    lines.push("  both are upper bounds on epsilon; the smaller one is the tighter guarantee");
  return lines.join("\n") + "\n";
}

export function registerBudgetCommand(program: Command): void {
  program
    .command("budget")
    .description(
      "epsilon spent by DP-SGD steps (Poisson-subsampled Gaussian), by the RDP and PRV accountants",
    )
    .requiredOption("--sample-rate <q>", "Poisson sampling rate per step, in [0, 1]")
    .requiredOption(
      "--noise-multiplier <sigma>",
      `noise standard deviation / clipping norm, in [0, ${MAX_NOISE_MULTIPLIER}]`,
    )
    .requiredOption("--steps <T>", "number of optimizer steps")
    .requiredOption("--delta <d>", `target delta, in (0, ${MAX_DELTA}]`)
    .option("--accountant <name>", "rdp or prv (default: both)")
    .option("--json", "print one JSON object")
    .action((opts: BudgetCommandOptions) => {
      const report = computeBudgetReport(parseBudgetOptions(opts));
      process.stdout.write(opts.json ? JSON.stringify(toJson(report)) + "\n" : toText(report));
    });
}
