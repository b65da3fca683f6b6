import { mkdir, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { Database } from "../storage/database.js";
import { entryHash, GENESIS_PREV, type AuditEntry, type HeadSigner } from "./entry.js";
import { AuditError } from "./errors.js";
import { Actor, checkPayload, type AuditKind, type AuditPayload } from "./kinds.js";
import { AUDIT_MIGRATIONS } from "./migrations.js";
import { migrate } from "../storage/migrations.js";

export interface AuditChainOptions {
  /** `role/name` of the chain's keeper: the actor of its own entries and the default actor. */
  actor: string;
  role: "coordinator" | "site";
  /** Signs the head at round end, job end and after admin actions (the coordinator's kit key). */
  signer?: HeadSigner;
  /**
   * A file the latest signed head is also written to, outside the database: `audit verify
   * --workspace` compares the chain with it, so a tail cut off in the database is detected.
   */
  anchorPath?: string;
}

interface Row {
  seq: string | number;
  at: string;
  actor: string;
  kind: string;
  payload: string;
  prev_hash: string;
  hash: string;
}

export function rowToEntry(r: Row): AuditEntry {
  return {
    seq: Number(r.seq),
    at: r.at,
    actor: r.actor,
    kind: r.kind as AuditKind,
    payload: JSON.parse(r.payload) as AuditEntry["payload"],
    prev: r.prev_hash,
    hash: r.hash,
  };
}

/** Bring the audit ledger's tables up to date (the project's migration runner, component `audit`). */
export async function migrateAudit(db: Database): Promise<void> {
  await migrate(db, "audit", AUDIT_MIGRATIONS);
}

/** Every entry of the chain in `db`, in sequence order, read in pages. */
export async function* readChain(db: Pick<Database, "query">, from = 1): AsyncIterable<AuditEntry> {
  for (let next = from; ;) {
    const rows = await db.query<Row>(
      "select seq, at, actor, kind, payload, prev_hash, hash from audit_entries where seq >= $1 order by seq limit 1000",
      [next],
    );
    for (const r of rows) yield rowToEntry(r);
    if (rows.length < 1000) return;
    next = Number(rows[rows.length - 1].seq) + 1;
  }
}

/**
 * An append-only, hash-chained audit record in PostgreSQL. Every entry carries the previous
 * entry's hash and its own over a canonical encoding; the database refuses UPDATE and DELETE and
 * an insert that does not link to the last entry; the keeper's key signs the head (an entry of
 * its own) so a rewritten or cut tail is detectable. Payloads pass their kind's schema: ids, hex
 * hashes, numbers and enums only, never a data value.
 */
export class AuditChain {
  private last: { seq: number; hash: string };
  private queue: Promise<unknown> = Promise.resolve();
  private readonly listeners = new Set<(e: AuditEntry) => void>();

  private constructor(
    private readonly db: Database,
    private readonly o: AuditChainOptions,
    last: { seq: number; hash: string },
  ) {
    this.last = last;
  }

  static async open(db: Database, o: AuditChainOptions): Promise<AuditChain> {
    if (!Actor.safeParse(o.actor).success)
      throw new AuditError("AUDIT_PAYLOAD_INVALID", "actor: must be role/name of a participant");
    await migrateAudit(db);
    const rows = await db.query<Row>("select seq, hash from audit_entries order by seq desc limit 1");
    const chain = new AuditChain(
      db,
      o,
      rows.length ? { seq: Number(rows[0].seq), hash: rows[0].hash } : { seq: 0, hash: GENESIS_PREV },
    );
    if (rows.length === 0) {
      await chain.append("chain_opened", {
        role: o.role,
        ...(o.signer ? { signer_key: o.signer.publicKeyHex } : {}),
      });
      await chain.signHead("opened");
    } else if (o.signer && !(await chain.declaresKey(o.signer.publicKeyHex))) {
      await chain.append("signer_added", { signer_key: o.signer.publicKeyHex });
      await chain.signHead("opened");
    }
    return chain;
  }

  /** The last entry's sequence number and hash. */
  get head(): { seq: number; hash: string } {
    return { ...this.last };
  }

  get signed(): boolean {
    return this.o.signer !== undefined;
  }

  /**
   * Append one entry, after its payload passes the kind's schema; resolves once it is committed
   * (write-ahead: a caller that awaits it goes on only when the entry is durable).
   */
  async append<K extends AuditKind>(
    kind: K,
    payload: AuditPayload<K>,
    actor = this.o.actor,
  ): Promise<AuditEntry> {
    const checked = checkPayload(kind, payload);
    if (!Actor.safeParse(actor).success)
      throw new AuditError("AUDIT_PAYLOAD_INVALID", `${kind}: actor must be role/name of a participant`);
    return this.serial(() => this.insert(kind, checked as AuditEntry["payload"], actor));
  }

  /** Sign the current head; a no-op for an unsigned chain (a site without a signing key). */
  async signHead(cause: AuditPayload<"head_signed">["cause"]): Promise<AuditEntry | null> {
    const signer = this.o.signer;
    if (!signer) return null;
    const entry = await this.serial(async () => {
      const { seq, hash } = this.last;
      return this.insert(
        "head_signed",
        {
          head_seq: seq,
          head_sha256: hash,
          signer_sha256: signer.keySha256,
          signature: signer.sign(seq, hash),
          cause,
        },
        this.o.actor,
      );
    });
    if (this.o.anchorPath) await writeAnchor(this.o.anchorPath, entry);
    return entry;
  }

  /** Entries with `seq >= from`, in order, at most `limit`. */
  async entries(from = 1, limit = 1000): Promise<AuditEntry[]> {
    const rows = await this.db.query<Row>(
      "select seq, at, actor, kind, payload, prev_hash, hash from audit_entries where seq >= $1 order by seq limit $2",
      [from, limit],
    );
    return rows.map(rowToEntry);
  }

  /** A read of the chain's database (the dashboard's verification reads the chain through it). */
  query<T>(sql: string, params?: unknown[]): Promise<T[]> {
    return this.db.query<T>(sql, params);
  }

  /** The payloads of every entry of one kind, in order. */
  async payloadsOf<K extends AuditKind>(kind: K): Promise<AuditPayload<K>[]> {
    const rows = await this.db.query<Row>("select payload from audit_entries where kind = $1 order by seq", [
      kind,
    ]);
    return rows.map((r) => JSON.parse(r.payload) as AuditPayload<K>);
  }

  /** Called with each entry once committed, in order; returns the unsubscribe function. */
  subscribe(listener: (e: AuditEntry) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async insert(kind: AuditKind, payload: AuditEntry["payload"], actor: string): Promise<AuditEntry> {
    const entry = await this.db.transaction(async (tx) => {
      // Other processes may share a PostgreSQL server: the chain grows one entry at a time.
      await tx.exec("lock table audit_entries in exclusive mode");
      const rows = await tx.query<Row>("select seq, hash from audit_entries order by seq desc limit 1");
      const prev = rows.length
        ? { seq: Number(rows[0].seq), hash: rows[0].hash }
        : { seq: 0, hash: GENESIS_PREV };
      // Absent optional fields are left out, never written as null: one encoding per payload.
      const present = Object.fromEntries(Object.entries(payload).filter(([, v]) => v !== undefined));
      const body = {
        seq: prev.seq + 1,
        at: new Date().toISOString(),
        actor,
        kind,
        payload: present,
        prev: prev.hash,
      };
      const e: AuditEntry = { ...body, hash: entryHash(body) };
      try {
        await tx.query(
          "insert into audit_entries (seq, at, actor, kind, payload, prev_hash, hash) values ($1, $2, $3, $4, $5, $6, $7)",
          [e.seq, e.at, e.actor, e.kind, JSON.stringify(e.payload), e.prev, e.hash],
        );
      } catch {
        throw new AuditError("AUDIT_APPEND_REFUSED", `the database refused audit entry ${e.seq} (${kind})`);
      }
      return e;
    });
    this.last = { seq: entry.seq, hash: entry.hash };
    for (const l of this.listeners) l(entry);
    return entry;
  }

  private async declaresKey(keyHex: string): Promise<boolean> {
    const declared = [...(await this.payloadsOf("chain_opened")), ...(await this.payloadsOf("signer_added"))];
    return declared.some((p) => p.signer_key === keyHex);
  }
}

/** The latest signed head, as one JSON line, replaced atomically. */
async function writeAnchor(path: string, entry: AuditEntry): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(`${path}.tmp`, JSON.stringify(entry) + "\n");
  await rename(`${path}.tmp`, path);
}
