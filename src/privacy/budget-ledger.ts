import type { Database } from "../storage/database.js";

/** One segment of DP-SGD steps at a fixed noise multiplier and sample rate. */
export interface BudgetSegment {
  noiseMultiplier: number;
  sampleRate: number;
  steps: number;
}

type Tx = Pick<Database, "query" | "exec">;

/**
 * Persistent, per-dataset record of spent privacy budget. Steps are written ahead as reservations
 * before they are taken; a clean finish settles a reservation down to the steps actually used, and
 * a crash leaves it counted in full. So the recorded budget never under-counts what was spent.
 */
export class BudgetLedger {
  private constructor(private readonly db: Database) {}

  static async open(db: Database): Promise<BudgetLedger> {
    await db.exec(`
      create table if not exists privacy_budget_ledger (
        id bigserial primary key,
        dataset_id text not null,
        job_id text not null,
        noise_multiplier double precision not null check (noise_multiplier >= 0),
        sample_rate double precision not null check (sample_rate >= 0 and sample_rate <= 1),
        steps integer not null check (steps >= 0),
        state text not null check (state in ('reserved', 'settled')),
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      );
      create index if not exists privacy_budget_ledger_dataset on privacy_budget_ledger (dataset_id);
    `);
    return new BudgetLedger(db);
  }

  /** Every segment recorded against the dataset, reservations included, oldest first. */
  async history(datasetId: string, tx: Tx = this.db): Promise<BudgetSegment[]> {
    const rows = await tx.query<{ noise_multiplier: number; sample_rate: number; steps: number }>(
      "select noise_multiplier, sample_rate, steps from privacy_budget_ledger where dataset_id = $1 and steps > 0 order by id",
      [datasetId],
    );
    return rows.map((r) => ({
      noiseMultiplier: Number(r.noise_multiplier),
      sampleRate: Number(r.sample_rate),
      steps: Number(r.steps),
    }));
  }

  /**
   * Under a per-dataset lock, read the history, let `decide` choose how many steps to reserve
   * (0 = none), and record the reservation. Serialises concurrent jobs on one dataset.
   */
  async reserve(
    datasetId: string,
    jobId: string,
    segment: Omit<BudgetSegment, "steps">,
    decide: (history: BudgetSegment[]) => number,
  ): Promise<{ id: string; steps: number; history: BudgetSegment[] }> {
    return this.db.transaction(async (tx) => {
      await tx.query("select pg_advisory_xact_lock(hashtext($1))", [`privacy-budget:${datasetId}`]);
      const history = await this.history(datasetId, tx);
      const steps = decide(history);
      if (steps <= 0) return { id: "", steps: 0, history };
      const [row] = await tx.query<{ id: string }>(
        `insert into privacy_budget_ledger (dataset_id, job_id, noise_multiplier, sample_rate, steps, state)
         values ($1, $2, $3, $4, $5, 'reserved') returning id`,
        [datasetId, jobId, segment.noiseMultiplier, segment.sampleRate, steps],
      );
      return { id: String(row.id), steps, history };
    });
  }

  /** Shrink a reservation to the steps actually taken; it can never grow. */
  async settle(id: string, usedSteps: number): Promise<void> {
    await this.db.query(
      `update privacy_budget_ledger set steps = least(steps, $2), state = 'settled', updated_at = now()
       where id = $1 and state = 'reserved'`,
      [id, usedSteps],
    );
  }

  /** Per-job totals for reporting. */
  async jobs(datasetId: string): Promise<{ jobId: string; steps: number; reserved: boolean }[]> {
    const rows = await this.db.query<{ job_id: string; steps: string; reserved: boolean }>(
      `select job_id, sum(steps) as steps, bool_or(state = 'reserved') as reserved
       from privacy_budget_ledger where dataset_id = $1 group by job_id order by min(id)`,
      [datasetId],
    );
    return rows.map((r) => ({ jobId: r.job_id, steps: Number(r.steps), reserved: r.reserved }));
  }
}
