import { cpSync, existsSync } from "node:fs";
import { join } from "node:path";
import { BudgetLedger } from "../../src/privacy/budget-ledger.js";
import { openDatabase } from "../../src/storage/database.js";

/**
 * Test speed only: PGlite's first open of a workspace runs initdb (seconds of CPU); a copy of an
 * empty, initialised ledger database opens in a fraction of that. Each agent still opens, locks
 * and writes its own database (`<workspace>/db`). Returns a function that seeds a workspace.
 */
export async function emptyLedgerCopier(root: string): Promise<(workspace: string) => void> {
  const template = join(root, "ledger-template");
  const db = await openDatabase({ workspace: template, url: "" });
  await BudgetLedger.open(db);
  await db.close();
  return (workspace) => {
    if (!existsSync(join(workspace, "db")))
      cpSync(join(template, "db"), join(workspace, "db"), { recursive: true });
  };
}
