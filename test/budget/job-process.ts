/**
 * One training job's budget loop as its own OS process (the budget property tests start many):
 * load a dataset file through the Data Sentry, key the ledger by its records' identity, and take
 * guarded steps until the plan or the budget ends. Prints one JSON line.
 */
import { basename, dirname } from "node:path";
import { loadDataset } from "../../src/data/load.js";
import { createAccountant, type AccountantName } from "../../src/privacy/accountant/index.js";
import { BudgetLedger } from "../../src/privacy/budget-ledger.js";
import { PrivacyGuard } from "../../src/privacy/guard.js";
import { openDatabase } from "../../src/storage/database.js";

interface JobArgs {
  workspace: string;
  url: string;
  dataFile: string;
  jobId: string;
  delta: number;
  accountant: AccountantName;
  sampleRate: number;
  noiseMultiplier: number;
  target: number;
  steps: number;
  chunk: number;
  /** Wait for the embedded database's lock instead of giving up (the concurrent-writers test). */
  waitForLock?: boolean;
}

const a = JSON.parse(process.argv[2]) as JobArgs;
const { source, dataset } = await loadDataset(dirname(a.dataFile), basename(a.dataFile));
let db;
for (;;) {
  try {
    db = await openDatabase({ workspace: a.workspace, url: a.url });
    break;
  } catch (err) {
    if ((err as { code?: string }).code !== "DATABASE_LOCKED") throw err;
    // A writer waits for the embedded database's one holder to finish; a job gives up.
    if (!a.waitForLock) {
      console.log(JSON.stringify({ locked: true }));
      process.exit(0);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
const guard = await new PrivacyGuard({
  ledger: await BudgetLedger.open(db),
  datasetId: source.identity,
  jobId: a.jobId,
  targetEpsilon: a.target,
  delta: a.delta,
  noiseMultiplier: a.noiseMultiplier,
  accountantFromHistory: (h) => createAccountant(a.accountant, h),
  reserveChunk: a.chunk,
  rows: dataset.rows,
}).init();
let stopped = false;
try {
  for (let i = 0; i < a.steps; i++) {
    await guard.beforeStep(a.sampleRate);
    if (i % 16 === 0) await new Promise((r) => setTimeout(r, 1));
  }
} catch (err) {
  if ((err as { code?: string }).code !== "PRIVACY_BUDGET_EXHAUSTED") throw err;
  stopped = true;
}
await guard.settle();
console.log(
  JSON.stringify({ steps: guard.steps, epsilon: guard.spentEpsilon(), delta: guard.delta, stopped }),
);
await db.close();
