import type { Migration } from "../storage/migrations.js";

/**
 * The audit ledger's schema (component `audit` of the migration runner). The table refuses
 * UPDATE, DELETE and TRUNCATE (a trigger raises), and an insert must link to the entry before it.
 */
export const AUDIT_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "audit_entries",
    sql: `
      create table if not exists audit_entries (
        seq bigint primary key check (seq >= 1),
        at text not null,
        actor text not null,
        kind text not null,
        payload text not null,
        prev_hash text not null check (prev_hash ~ '^[0-9a-f]{64}$'),
        hash text not null unique check (hash ~ '^[0-9a-f]{64}$')
      );`,
  },
  {
    version: 2,
    name: "append-only and linked-insert triggers",
    sql: `
      create or replace function audit_entries_refuse_change() returns trigger language plpgsql as $$
      begin
        raise exception 'audit_entries is append-only: % refused', tg_op using errcode = 'P0001';
      end $$;
      create or replace function audit_entries_check_link() returns trigger language plpgsql as $$
      declare last_seq bigint; last_hash text;
      begin
        select seq, hash into last_seq, last_hash from audit_entries order by seq desc limit 1;
        if (last_seq is null and (new.seq <> 1 or new.prev_hash <> repeat('0', 64)))
           or (last_seq is not null and (new.seq <> last_seq + 1 or new.prev_hash <> last_hash)) then
          raise exception 'audit_entries: an entry must follow the last one (seq and prev_hash)'
            using errcode = 'P0001';
        end if;
        return new;
      end $$;
      create or replace trigger audit_entries_no_update before update or delete on audit_entries
        for each row execute function audit_entries_refuse_change();
      create or replace trigger audit_entries_no_truncate before truncate on audit_entries
        for each statement execute function audit_entries_refuse_change();
      create or replace trigger audit_entries_linked before insert on audit_entries
        for each row execute function audit_entries_check_link();`,
  },
];
