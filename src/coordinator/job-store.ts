import { createHash } from "node:crypto";
import type { JobDirectory, JobState, JobView } from "../host/job-directory.js";
import { HostError } from "../host/errors.js";
import { parseSafetensors, serializeSafetensors } from "../model/safetensors.js";
import { FederationJob } from "../schemas/federation.js";
import { parseContract } from "../schemas/contract.js";
import { openDatabase, type Database } from "../storage/database.js";
import { migrate, type Migration } from "../storage/migrations.js";
import type { StrategyState } from "../strategies/types.js";
import type { TensorMap } from "../tensor/tensor.js";
import type { ClientRecord, ClientState, RoundRecord } from "./coordinator.js";
import { CoordinatorError } from "./errors.js";
import type { CoordinatorEvent } from "./events.js";

/**
 * The coordinator's tables. A job's submitted contract, its status, its events in order, each
 * released round once (the primary key), each client's standing, and the checkpoint of the global
 * model after the last released round (safetensors bytes, their SHA-256, the strategy's state).
 */
export const COORDINATOR_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "jobs, events, rounds, clients and checkpoints",
    sql: `
  create table coordinator_jobs (
    job_id text primary key,
    job text not null,
    status text not null check (status in ('queued', 'running', 'completed', 'insufficient_clients',
      'privacy_budget_exhausted', 'aborted', 'failed')),
    rounds integer not null check (rounds > 0),
    rounds_completed integer not null default 0 check (rounds_completed >= 0),
    reason text not null default '',
    model_sha256 text not null default '',
    submitted_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
  );
  create table coordinator_events (
    job_id text not null references coordinator_jobs (job_id),
    seq integer not null check (seq > 0),
    type text not null,
    round integer,
    event text not null,
    at timestamptz not null default now(),
    primary key (job_id, seq)
  );
  create table coordinator_rounds (
    job_id text not null references coordinator_jobs (job_id),
    round integer not null check (round > 0),
    record text not null,
    model_sha256 text not null,
    at timestamptz not null default now(),
    primary key (job_id, round)
  );
  create table coordinator_clients (
    job_id text not null references coordinator_jobs (job_id),
    client_id text not null,
    state text not null check (state in ('active', 'dropped', 'budget_exhausted', 'untrusted', 'failed')),
    epsilon double precision not null default 0 check (epsilon >= 0),
    examples integer not null default 0 check (examples >= 0),
    reason text,
    primary key (job_id, client_id)
  );
  create table coordinator_checkpoints (
    job_id text primary key references coordinator_jobs (job_id),
    round integer not null check (round > 0),
    model bytea not null,
    model_sha256 text not null,
    strategy bytea,
    strategy_round integer,
    at timestamptz not null default now()
  );
`,
  },
];

/** One client's standing as the store last recorded it. */
export type StoredClient = { id: string } & ClientRecord;

/** What a job resumes from: the rounds released so far and the checkpoint after the last of them. */
export interface JobCheckpoint {
  rounds: RoundRecord[];
  global: TensorMap;
  /** The strategy's cross-round state after the last round (optimizer moments, control variates). */
  strategy?: StrategyState;
  clients: StoredClient[];
}

type Tx = Pick<Database, "query" | "exec">;

const ENDED: readonly JobState[] = [
  "completed",
  "insufficient_clients",
  "privacy_budget_exhausted",
  "aborted",
  "failed",
];

interface JobRow {
  job_id: string;
  status: JobState;
  rounds: number;
  rounds_completed: number;
  reason: string;
  model_sha256: string;
  submitted_at: Date | string;
}

const VIEW = "job_id, status, rounds, rounds_completed, reason, model_sha256, submitted_at";

const viewOf = (r: JobRow): JobView => ({
  job_id: r.job_id,
  status: r.status,
  rounds_completed: Number(r.rounds_completed),
  rounds: Number(r.rounds),
  reason: r.reason,
  model_sha256: r.model_sha256,
  submitted_at: new Date(r.submitted_at).toISOString(),
});

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** An event as stored: everything but the model and the strategy state (kept as the checkpoint). */
function storedEvent(e: CoordinatorEvent): string {
  const {
    global: _g,
    strategy: _s,
    ...data
  } = e as CoordinatorEvent & { global?: unknown; strategy?: unknown };
  return JSON.stringify(data);
}

function loadedEvent(text: string): CoordinatorEvent {
  const e = JSON.parse(text) as CoordinatorEvent;
  return e.type === "round_completed" ? { ...e, global: new Map() } : e;
}

export interface JobStoreOptions {
  /** How often a watcher looks for events another process wrote (ms). Default 500. */
  pollMs?: number;
}

/**
 * The coordinator's jobs in PostgreSQL (the server in DATABASE_URL, or PGlite under the
 * coordinator's workspace), behind the host API's JobDirectory: jobs, statuses, events, rounds,
 * client standings and checkpoints survive a restart. `record` commits an event (and, for
 * `round_completed`, the round and its checkpoint) in one transaction before it returns, so the
 * coordinator goes on only once the event is durable; nothing is half-written. One coordinator
 * process per database: `claim` hands a job that was running when the coordinator stopped back
 * to the next one that asks, with its checkpoint.
 */
export class JobStore implements JobDirectory {
  private readonly listeners = new Set<() => void>();

  private constructor(
    private readonly db: Database,
    private readonly pollMs: number,
    private readonly owned: boolean,
  ) {}

  /** The store over an open database (its owner closes it), its tables brought up to date. */
  static async open(db: Database, o: JobStoreOptions = {}): Promise<JobStore> {
    await migrate(db, "coordinator", COORDINATOR_MIGRATIONS);
    return new JobStore(db, o.pollMs ?? 500, false);
  }

  /** The store in the coordinator's workspace (or DATABASE_URL); `close` closes the database. */
  static async openWorkspace(
    workspace: string,
    o: JobStoreOptions & { url?: string } = {},
  ): Promise<JobStore> {
    const db = await openDatabase({ workspace, url: o.url });
    try {
      await migrate(db, "coordinator", COORDINATOR_MIGRATIONS);
    } catch (err) {
      await db.close();
      throw err;
    }
    return new JobStore(db, o.pollMs ?? 500, true);
  }

  /**
   * The store's database for the coordinator's other state (the client-level DP ledger): the
   * embedded database admits one opener per process, so everything shares this one. Closing the
   * view leaves it open.
   */
  get database(): Database {
    return { ...this.db, close: async () => {} };
  }

  async close(): Promise<void> {
    this.wake();
    if (this.owned) await this.db.close();
  }

  async submit(job: FederationJob): Promise<JobView> {
    const rows = await this.db.query<JobRow>(
      `insert into coordinator_jobs (job_id, job, status, rounds) values ($1, $2, 'queued', $3)
       on conflict (job_id) do nothing returning ${VIEW}`,
      [job.job_id, JSON.stringify(job), job.rounds],
    );
    if (rows.length === 0) throw new HostError("JOB_EXISTS", `job ${job.job_id} exists already`);
    return viewOf(rows[0]);
  }

  async get(jobId: string): Promise<JobView> {
    const [row] = await this.db.query<JobRow>(`select ${VIEW} from coordinator_jobs where job_id = $1`, [
      jobId,
    ]);
    if (!row) throw new HostError("JOB_NOT_FOUND", "no job with that id");
    return viewOf(row);
  }

  async list(): Promise<JobView[]> {
    const rows = await this.db.query<JobRow>(
      `select ${VIEW} from coordinator_jobs order by submitted_at desc, job_id desc`,
    );
    return rows.map(viewOf);
  }

  async abort(jobId: string): Promise<JobView> {
    await this.db.query(
      `update coordinator_jobs set status = 'aborted', reason = 'aborted by an admin', updated_at = now()
       where job_id = $1 and status <> all($2::text[])`,
      [jobId, ENDED],
    );
    this.wake();
    return this.get(jobId);
  }

  /**
   * The job to run next: one that was running when the coordinator stopped (with its checkpoint,
   * to resume from), else the oldest queued one; null when there is none. A queued job stays
   * "queued" (waiting for its sites) until its job_started event; the runner claims one job at a
   * time, so it is not handed out twice.
   */
  async claim(): Promise<{ job: FederationJob; resume?: JobCheckpoint } | null> {
    const claimed = await this.db.transaction(async (tx) => {
      const [row] = await tx.query<{ job_id: string; job: string; status: JobState }>(
        `select job_id, job, status from coordinator_jobs where status in ('running', 'queued')
         order by status = 'running' desc, submitted_at, job_id limit 1 for update`,
      );
      if (!row) return null;
      // The contract is re-checked: the row is input from disk, like any job file.
      const job = parseContract(FederationJob, JSON.parse(row.job), "FederationJob");
      return { job, resume: row.status === "running" ? await this.checkpoint(tx, row.job_id) : undefined };
    });
    this.wake();
    if (!claimed) return null;
    return claimed.resume ? claimed : { job: claimed.job };
  }

  /** The job's checkpoint, or undefined before its first round; refused when it does not verify. */
  async checkpoint(tx: Tx, jobId: string): Promise<JobCheckpoint | undefined> {
    const [cp] = await tx.query<{
      round: number;
      model: Uint8Array;
      model_sha256: string;
      strategy: Uint8Array | null;
      strategy_round: number | null;
    }>(
      "select round, model, model_sha256, strategy, strategy_round from coordinator_checkpoints where job_id = $1",
      [jobId],
    );
    if (!cp) return undefined;
    const rounds = await tx.query<{ round: number; record: string; model_sha256: string }>(
      "select round, record, model_sha256 from coordinator_rounds where job_id = $1 order by round",
      [jobId],
    );
    const corrupt = (what: string) =>
      new CoordinatorError("CHECKPOINT_INVALID", `job ${jobId}: the checkpoint of round ${cp.round} ${what}`);
    const model = new Uint8Array(cp.model);
    if (sha256(model) !== cp.model_sha256) throw corrupt("does not match its SHA-256");
    const last = rounds.at(-1);
    if (!last || Number(last.round) !== Number(cp.round) || last.model_sha256 !== cp.model_sha256)
      throw corrupt("is not the model of the job's last recorded round");
    rounds.forEach((r, i) => {
      if (Number(r.round) !== i + 1) throw corrupt(`follows a gap in the rounds (round ${i + 1} missing)`);
    });
    const clients = await tx.query<{
      client_id: string;
      state: ClientState;
      epsilon: number;
      examples: number;
      reason: string | null;
    }>("select client_id, state, epsilon, examples, reason from coordinator_clients where job_id = $1", [
      jobId,
    ]);
    return {
      rounds: rounds.map((r) => JSON.parse(r.record) as RoundRecord),
      global: parseSafetensors(model).tensors,
      ...(cp.strategy_round !== null
        ? {
            strategy: {
              round: Number(cp.strategy_round),
              tensors: cp.strategy ? parseSafetensors(new Uint8Array(cp.strategy)).tensors : new Map(),
            },
          }
        : {}),
      clients: clients.map((c) => ({
        id: c.client_id,
        state: c.state,
        epsilon: Number(c.epsilon),
        examples: Number(c.examples),
        ...(c.reason !== null ? { reason: c.reason } : {}),
      })),
    };
  }

  /**
   * One coordinator event, durable when this resolves: appended to the job's history and folded
   * into its status, its clients' standing and, for `round_completed`, the round (once: a round
   * recorded twice is refused) and the checkpoint. An ended job (aborted by an admin, say) keeps
   * its status; only its final event lands.
   */
  async record(event: CoordinatorEvent): Promise<void> {
    await this.db.transaction(async (tx) => {
      const [job] = await tx.query<{ status: JobState }>(
        "select status from coordinator_jobs where job_id = $1 for update",
        [event.job_id],
      );
      if (!job) throw new HostError("JOB_NOT_FOUND", "no job with that id");
      const ended = ENDED.includes(job.status);
      if (ended && event.type !== "job_finished") return;
      await tx.query(
        `insert into coordinator_events (job_id, seq, type, round, event)
         select $1, coalesce(max(seq), 0) + 1, $2, $3, $4 from coordinator_events where job_id = $1`,
        [event.job_id, event.type, "round" in event ? event.round : null, storedEvent(event)],
      );
      await this.fold(tx, event, ended);
    });
    this.wake();
  }

  private async fold(tx: Tx, e: CoordinatorEvent, ended: boolean): Promise<void> {
    switch (e.type) {
      case "job_started":
        await tx.query(
          "update coordinator_jobs set status = 'running', updated_at = now() where job_id = $1 and status = 'queued'",
          [e.job_id],
        );
        for (const id of e.clients)
          await tx.query(
            `insert into coordinator_clients (job_id, client_id, state) values ($1, $2, 'active')
             on conflict do nothing`,
            [e.job_id, id],
          );
        return;
      case "client_reported":
        await tx.query(
          `update coordinator_clients set epsilon = $3, examples = $4 where job_id = $1 and client_id = $2`,
          [e.job_id, e.client_id, e.epsilon, e.examples],
        );
        return;
      case "client_excluded":
        await tx.query(
          "update coordinator_clients set state = $3, reason = $4 where job_id = $1 and client_id = $2",
          [e.job_id, e.client_id, e.state, e.reason],
        );
        return;
      case "round_completed":
        return this.commitRound(tx, e);
      case "job_finished":
        await tx.query(
          `update coordinator_jobs set status = case when $5 then status else $2 end, reason = $3,
             model_sha256 = $4, updated_at = now() where job_id = $1`,
          [e.job_id, e.status, e.reason ?? "", e.model_sha256, ended],
        );
        return;
      default:
        return;
    }
  }

  /** The round once, its record and the checkpoint of its model (replacing the previous one). */
  private async commitRound(
    tx: Tx,
    e: Extract<CoordinatorEvent, { type: "round_completed" }>,
  ): Promise<void> {
    const model = serializeSafetensors(e.global);
    const digest = sha256(model);
    if (digest !== e.model_sha256)
      throw new CoordinatorError(
        "CHECKPOINT_INVALID",
        `job ${e.job_id}: round ${e.round}'s model does not match the model_sha256 of its event`,
      );
    const inserted = await tx.query(
      `insert into coordinator_rounds (job_id, round, record, model_sha256) values ($1, $2, $3, $4)
       on conflict do nothing returning round`,
      [e.job_id, e.round, JSON.stringify(e.record), digest],
    );
    if (inserted.length === 0)
      throw new CoordinatorError(
        "ROUND_RECORDED_TWICE",
        `job ${e.job_id}: round ${e.round} is recorded already`,
      );
    const strategy = e.strategy;
    await tx.query(
      `insert into coordinator_checkpoints (job_id, round, model, model_sha256, strategy, strategy_round)
       values ($1, $2, $3, $4, $5, $6)
       on conflict (job_id) do update set round = excluded.round, model = excluded.model,
         model_sha256 = excluded.model_sha256, strategy = excluded.strategy,
         strategy_round = excluded.strategy_round, at = now()`,
      [
        e.job_id,
        e.round,
        model,
        digest,
        strategy && strategy.tensors.size > 0 ? serializeSafetensors(strategy.tensors) : null,
        strategy ? strategy.round : null,
      ],
    );
    await tx.query(
      `update coordinator_jobs set rounds_completed = $2, model_sha256 = $3, updated_at = now()
       where job_id = $1`,
      [e.job_id, e.round, digest],
    );
  }

  async *watch(jobId: string, signal: AbortSignal): AsyncIterable<CoordinatorEvent> {
    await this.get(jobId);
    let seq = 0;
    for (;;) {
      const rows = await this.db.query<{ seq: number; event: string }>(
        "select seq, event from coordinator_events where job_id = $1 and seq > $2 order by seq limit 500",
        [jobId, seq],
      );
      for (const r of rows) {
        seq = Number(r.seq);
        yield loadedEvent(r.event);
      }
      if (rows.length === 500) continue;
      if (ENDED.includes((await this.get(jobId)).status) && (await this.caughtUp(jobId, seq))) return;
      if (signal.aborted) return;
      await this.nextChange(signal);
    }
  }

  private async caughtUp(jobId: string, seq: number): Promise<boolean> {
    const [{ n }] = await this.db.query<{ n: number }>(
      "select count(*)::int as n from coordinator_events where job_id = $1 and seq > $2",
      [jobId, seq],
    );
    return Number(n) === 0;
  }

  /** Until this process records something, `pollMs` passes (another process may write), or `signal` aborts. */
  private nextChange(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, this.pollMs);
      this.listeners.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  private wake(): void {
    for (const l of [...this.listeners]) l();
  }
}
