/**
 * Independent checks of a budget ledger, from its rows alone (not through the guard's code path):
 * the dataset's spend at its accounting delta, and each job's spend as of its last step.
 */
import {
  createAccountant,
  DEFAULT_RDP_ORDERS,
  rdpOfOneStep,
  rdpToEpsilon,
  type AccountantName,
} from "../../src/privacy/accountant/index.js";
import type { BudgetSegment } from "../../src/privacy/budget-ledger.js";
import { DEFAULT_DELTA } from "../../src/schemas/privacy.js";
import type { Database } from "../../src/storage/database.js";

export interface LedgerRow extends BudgetSegment {
  id: number;
  jobId: string;
  delta: number;
}

/** Epsilon of the recorded steps at `delta`, by a direct sum of per-step RDP. */
export function independentRdpEpsilon(history: readonly BudgetSegment[], delta: number): number {
  const total = DEFAULT_RDP_ORDERS.map((a) =>
    history.reduce((s, h) => s + h.steps * rdpOfOneStep(h.sampleRate, h.noiseMultiplier, a), 0),
  );
  return Math.max(0, rdpToEpsilon(total, delta).epsilon);
}

/**
 * Epsilon by the accountant a guard used: RDP summed directly; a PRV-guarded spend (PRV is tighter
 * than RDP) is the smaller of the two when RDP alone passes `limit`.
 */
export function spendOf(
  history: readonly BudgetSegment[],
  delta: number,
  accountant: AccountantName,
  limit: number,
): number {
  const rdp = independentRdpEpsilon(history, delta);
  if (accountant === "rdp" || rdp <= limit) return rdp;
  return Math.min(rdp, createAccountant("prv", [...history]).getEpsilon(delta));
}

/** The rows that count (steps taken or reserved, not reset), in reservation order. */
export async function ledgerRows(db: Database, datasetId: string): Promise<LedgerRow[]> {
  const rows = await db.query<{
    id: string;
    job_id: string;
    noise_multiplier: number;
    sample_rate: number;
    steps: number;
    delta: number | null;
  }>(
    `select id, job_id, noise_multiplier, sample_rate, steps, delta from privacy_budget_ledger
     where dataset_id = $1 and steps > 0 and reset_by is null order by id`,
    [datasetId],
  );
  return rows.map((r) => ({
    id: Number(r.id),
    jobId: r.job_id,
    noiseMultiplier: Number(r.noise_multiplier),
    sampleRate: Number(r.sample_rate),
    steps: Number(r.steps),
    delta: r.delta === null ? DEFAULT_DELTA : Number(r.delta),
  }));
}

/**
 * A job's spend as of its last step, from the ledger: every row recorded up to and including the
 * job's last reservation (rows are numbered in the order the per-dataset lock granted them), at the
 * smallest delta among them, which is the delta the guard checked that reservation at. Null when
 * the job recorded no step.
 */
export function jobSpendFromLedger(
  rows: readonly LedgerRow[],
  jobId: string,
  accountant: AccountantName,
  limit: number,
): { epsilon: number; delta: number } | null {
  const last = rows.findLastIndex((r) => r.jobId === jobId);
  if (last < 0) return null;
  const prefix = rows.slice(0, last + 1);
  const delta = Math.min(...prefix.map((r) => r.delta));
  return { epsilon: spendOf(prefix, delta, accountant, limit), delta };
}
