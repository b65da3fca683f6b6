import { userInfo } from "node:os";
import { DEFAULT_DELTA } from "../schemas/privacy.js";
import type { Database } from "../storage/database.js";
import { migrate, type Migration } from "../storage/migrations.js";

/** One segment of DP-SGD steps at a fixed noise multiplier and sample rate. */
export interface BudgetSegment {
  noiseMultiplier: number;
  sampleRate: number;
  steps: number;
}

/** What the ledger holds for one dataset: its steps, and the delta its budget is accounted at. */
export interface DatasetBudgetState {
  history: BudgetSegment[];
  /**
   * The dataset's accounting delta: the smallest delta of any job that recorded steps on it
   * (null before the first step). No job can raise it; see docs/privacy.md.
   */
  delta: number | null;
}

/** One row of `ledger show`: a job's steps on a dataset. */
export interface LedgerJobRow {
  jobId: string;
  steps: number;
  reserved: boolean;
  /** The delta the job asked for (null: recorded before deltas were kept, counted at DEFAULT_DELTA). */
  delta: number | null;
  segments: BudgetSegment[];
  firstAt: string;
  lastAt: string;
}

/** An audited operator action or migration on a dataset's budget. */
export interface LedgerAuditRow {
  id: string;
  datasetId: string;
  action: "reset" | "migrate";
  operator: string;
  reason: string;
  detail: Record<string, unknown>;
  at: string;
}

type Tx = Pick<Database, "query" | "exec">;

const lockKey = (datasetId: string) => `privacy-budget:${datasetId}`;

/**
 * The ledger's migrations. The first is the schema as it was created inline before migrations
 * existed, written to be idempotent (`if not exists`; the `alter`s upgrade a ledger written before
 * deltas and resets were kept), so a workspace from then is adopted unchanged. Later ones are plain.
 */
export const BUDGET_LEDGER_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "ledger and audit tables, with deltas and resets",
    sql: `
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
  alter table privacy_budget_ledger add column if not exists delta double precision
    check (delta > 0 and delta < 1);
  alter table privacy_budget_ledger add column if not exists reset_by bigint;
  create table if not exists privacy_budget_audit (
    id bigserial primary key,
    dataset_id text not null,
    action text not null check (action in ('reset', 'migrate')),
    operator text not null,
    reason text not null,
    detail text not null,
    created_at timestamptz not null default now()
  );
`,
  },
  {
    version: 2,
    name: "rows inherited by another key (a copy of history that counts under both)",
    sql: `
  alter table privacy_budget_ledger add column inherited_from bigint;
  create index privacy_budget_ledger_inherited on privacy_budget_ledger (dataset_id, inherited_from);
`,
  },
];

/**
 * Persistent, per-dataset record of spent privacy budget. Steps are written ahead as reservations
 * before they are taken; a clean finish settles a reservation down to the steps actually used, and
 * a crash leaves it counted in full. So the recorded budget never under-counts what was spent.
 * Rows are never deleted: a reset (an explicit operator action) marks them with its audit entry.
 */
export class BudgetLedger {
  private constructor(private readonly db: Database) {}

  /** Opens the ledger in `db`, bringing its tables up to date (see `migrate`). */
  static async open(db: Database): Promise<BudgetLedger> {
    await migrate(db, "privacy_budget_ledger", BUDGET_LEDGER_MIGRATIONS);
    return new BudgetLedger(db);
  }

  /** Every segment recorded against the dataset (reservations included, resets excluded), oldest first. */
  async history(datasetId: string, tx: Tx = this.db): Promise<BudgetSegment[]> {
    return (await this.state(datasetId, tx)).history;
  }

  /** The dataset's history and accounting delta (legacy rows without a delta count at DEFAULT_DELTA). */
  async state(datasetId: string, tx: Tx = this.db): Promise<DatasetBudgetState> {
    const rows = await tx.query<{
      noise_multiplier: number;
      sample_rate: number;
      steps: number;
      delta: number | null;
    }>(
      `select noise_multiplier, sample_rate, steps, delta from privacy_budget_ledger
       where dataset_id = $1 and steps > 0 and reset_by is null order by id`,
      [datasetId],
    );
    let delta: number | null = null;
    for (const r of rows) {
      const d = r.delta === null ? DEFAULT_DELTA : Number(r.delta);
      delta = delta === null ? d : Math.min(delta, d);
    }
    return {
      history: rows.map((r) => ({
        noiseMultiplier: Number(r.noise_multiplier),
        sampleRate: Number(r.sample_rate),
        steps: Number(r.steps),
      })),
      delta,
    };
  }

  /**
   * Under a per-dataset lock, read the state, let `decide` choose how many steps to reserve
   * (0 = none), and record the reservation with the job's delta. Serialises concurrent jobs on one dataset.
   */
  async reserve(
    datasetId: string,
    jobId: string,
    segment: Omit<BudgetSegment, "steps"> & { delta?: number },
    decide: (history: BudgetSegment[], state: DatasetBudgetState) => number,
  ): Promise<{ id: string; steps: number; history: BudgetSegment[]; state: DatasetBudgetState }> {
    return this.db.transaction(async (tx) => {
      await tx.query("select pg_advisory_xact_lock(hashtext($1))", [lockKey(datasetId)]);
      const state = await this.state(datasetId, tx);
      const steps = decide(state.history, state);
      if (steps <= 0) return { id: "", steps: 0, history: state.history, state };
      const [row] = await tx.query<{ id: string }>(
        `insert into privacy_budget_ledger (dataset_id, job_id, noise_multiplier, sample_rate, steps, state, delta)
         values ($1, $2, $3, $4, $5, 'reserved', $6) returning id`,
        [
          datasetId,
          jobId,
          segment.noiseMultiplier,
          segment.sampleRate,
          steps,
          segment.delta ?? DEFAULT_DELTA,
        ],
      );
      return { id: String(row.id), steps, history: state.history, state };
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

  /**
   * Move history recorded under older keys of the same data (the file's byte hash, the id it was
   * reached by) to `datasetId`, once, with an audit entry: data with history never gets a fresh
   * budget because its key changed. Returns the number of rows moved.
   */
  async adopt(datasetId: string, legacyKeys: readonly string[]): Promise<number> {
    const keys = [...new Set(legacyKeys)].filter((k) => k !== datasetId && k.length > 0);
    if (keys.length === 0) return 0;
    return this.db.transaction(async (tx) => {
      await tx.query("select pg_advisory_xact_lock(hashtext($1))", [lockKey(datasetId)]);
      const moved = await tx.query<{ id: string }>(
        `update privacy_budget_ledger set dataset_id = $1, updated_at = now()
         where dataset_id = any($2::text[]) and reset_by is null returning id`,
        [datasetId, keys],
      );
      if (moved.length > 0) {
        await this.audit(tx, datasetId, "migrate", "history recorded under an older key of the same data", {
          rows: moved.length,
          legacy_keys: keys.length,
        });
      }
      return moved.length;
    });
  }

  /**
   * Copy history recorded under `fromKey` into `datasetId`, once per source row, with an audit
   * entry: unlike `adopt`, the rows keep counting under `fromKey` too, for history that covers
   * several keys at once (a client-level budget once kept per job population, now per client).
   * Returns the number of rows copied.
   */
  async inherit(datasetId: string, fromKey: string): Promise<number> {
    if (fromKey === datasetId) return 0;
    return this.db.transaction(async (tx) => {
      await tx.query("select pg_advisory_xact_lock(hashtext($1))", [lockKey(datasetId)]);
      const copied = await tx.query<{ id: string }>(
        `insert into privacy_budget_ledger
           (dataset_id, job_id, noise_multiplier, sample_rate, steps, state, delta, created_at, inherited_from)
         select $1, job_id, noise_multiplier, sample_rate, steps, state, delta, created_at, id
         from privacy_budget_ledger src where dataset_id = $2 and reset_by is null
           and not exists (select 1 from privacy_budget_ledger dst
                           where dst.dataset_id = $1 and dst.inherited_from = src.id)
         order by id returning id`,
        [datasetId, fromKey],
      );
      if (copied.length > 0)
        await this.audit(tx, datasetId, "migrate", "history inherited from a key that covered this one", {
          rows: copied.length,
          from_key: fromKey,
        });
      return copied.length;
    });
  }

  /**
   * The explicit, audited operator action that gives a dataset a fresh budget: its rows stay in the
   * ledger, marked with the audit entry, and stop counting. Returns the audit entry's id.
   */
  async reset(datasetId: string, reason: string, detail: Record<string, unknown> = {}): Promise<string> {
    return this.db.transaction(async (tx) => {
      await tx.query("select pg_advisory_xact_lock(hashtext($1))", [lockKey(datasetId)]);
      const id = await this.audit(tx, datasetId, "reset", reason, detail);
      await tx.query(
        "update privacy_budget_ledger set reset_by = $2, updated_at = now() where dataset_id = $1 and reset_by is null",
        [datasetId, id],
      );
      return id;
    });
  }

  private async audit(
    tx: Tx,
    datasetId: string,
    action: LedgerAuditRow["action"],
    reason: string,
    detail: Record<string, unknown>,
  ): Promise<string> {
    let operator = "unknown";
    try {
      operator = userInfo().username;
    } catch {
      // no passwd entry: keep "unknown"
    }
    const [row] = await tx.query<{ id: string }>(
      `insert into privacy_budget_audit (dataset_id, action, operator, reason, detail)
       values ($1, $2, $3, $4, $5) returning id`,
      [datasetId, action, operator, reason, JSON.stringify(detail)],
    );
    return String(row.id);
  }

  /** Dataset keys with budget that counts, oldest first. */
  async datasets(): Promise<string[]> {
    const rows = await this.db.query<{ dataset_id: string }>(
      `select dataset_id from privacy_budget_ledger where reset_by is null
       group by dataset_id order by min(id)`,
    );
    return rows.map((r) => r.dataset_id);
  }

  /** Per-job totals for reporting (resets excluded). */
  async jobs(datasetId: string): Promise<{ jobId: string; steps: number; reserved: boolean }[]> {
    return (await this.jobDetails(datasetId)).map(({ jobId, steps, reserved }) => ({
      jobId,
      steps,
      reserved,
    }));
  }

  /** Per-job rows with their segments and times, oldest first (resets excluded). */
  async jobDetails(datasetId: string): Promise<LedgerJobRow[]> {
    const rows = await this.db.query<{
      job_id: string;
      noise_multiplier: number;
      sample_rate: number;
      steps: number;
      state: string;
      delta: number | null;
      created_at: Date | string;
      updated_at: Date | string;
    }>(
      `select job_id, noise_multiplier, sample_rate, steps, state, delta, created_at, updated_at
       from privacy_budget_ledger where dataset_id = $1 and reset_by is null order by id`,
      [datasetId],
    );
    const byJob = new Map<string, LedgerJobRow>();
    const iso = (t: Date | string) => new Date(t).toISOString();
    for (const r of rows) {
      let job = byJob.get(r.job_id);
      if (!job) {
        job = {
          jobId: r.job_id,
          steps: 0,
          reserved: false,
          delta: r.delta === null ? null : Number(r.delta),
          segments: [],
          firstAt: iso(r.created_at),
          lastAt: iso(r.updated_at),
        };
        byJob.set(r.job_id, job);
      }
      job.steps += Number(r.steps);
      job.reserved ||= r.state === "reserved";
      job.lastAt = iso(r.updated_at) > job.lastAt ? iso(r.updated_at) : job.lastAt;
      if (Number(r.steps) > 0)
        job.segments.push({
          noiseMultiplier: Number(r.noise_multiplier),
          sampleRate: Number(r.sample_rate),
          steps: Number(r.steps),
        });
    }
    return [...byJob.values()];
  }

  /** Audit entries (resets and migrations), oldest first; of one dataset when given. */
  async auditLog(datasetId?: string): Promise<LedgerAuditRow[]> {
    const rows = await this.db.query<{
      id: string;
      dataset_id: string;
      action: LedgerAuditRow["action"];
      operator: string;
      reason: string;
      detail: string;
      created_at: Date | string;
    }>(
      `select id, dataset_id, action, operator, reason, detail, created_at from privacy_budget_audit
       where $1::text is null or dataset_id = $1 order by id`,
      [datasetId ?? null],
    );
    return rows.map((r) => ({
      id: String(r.id),
      datasetId: r.dataset_id,
      action: r.action,
      operator: r.operator,
      reason: r.reason,
      detail: JSON.parse(r.detail) as Record<string, unknown>,
      at: new Date(r.created_at).toISOString(),
    }));
  }
}
