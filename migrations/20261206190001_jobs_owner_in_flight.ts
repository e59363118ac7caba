import type { Knex } from 'knex';

/**
 * The concurrent-jobs cap in the same statement as the job's insert (issue 15:
 * one Postgres statement records a submit). `parley_owner_in_flight` takes the
 * owner's advisory lock for the rest of the transaction, then counts the
 * owner's queued and running jobs of the given kinds. It is VOLATILE, so under
 * READ COMMITTED (the isolation every job statement runs at; the function
 * refuses any other) its count runs on a snapshot taken after the lock was granted: a racing submit of the same
 * owner that committed while this one waited is counted. The insert that
 * calls it (platform/jobs/store.ts insertCapped) commits with the lock still
 * held, so submits of one owner take turns and never admit more jobs than the
 * cap.
 *
 * The partial index keeps that count proportional to the owner's jobs in
 * flight, not to their whole history. It is built CONCURRENTLY (outside a
 * transaction), so a large jobs table keeps taking writes meanwhile; an
 * invalid index left by an interrupted build is dropped and built again.
 */
export const config = { transaction: false };

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create or replace function parley_owner_in_flight(owner uuid, kinds text[]) returns bigint
    language plpgsql volatile as $$
    begin
      -- Above READ COMMITTED the count would see the snapshot of the statement's start, taken before the
      -- lock, and racing submits could pass the cap: refuse loudly rather than over-admit quietly.
      if current_setting('transaction_isolation') <> 'read committed' then
        raise exception 'parley_owner_in_flight needs READ COMMITTED, not %', current_setting('transaction_isolation');
      end if;
      perform pg_advisory_xact_lock(hashtext('parley:jobs:owner:' || owner::text));
      return (select count(*) from jobs where owner_id = owner and state in ('queued', 'active') and kind = any(kinds));
    end
    $$`);
  const invalid = await knex.raw(
    `select 1 from pg_index i join pg_class c on c.oid = i.indexrelid where c.relname = 'jobs_owner_in_flight' and not i.indisvalid`,
  );
  if (invalid.rows.length) await knex.raw('drop index concurrently if exists jobs_owner_in_flight');
  await knex.raw(`create index concurrently if not exists jobs_owner_in_flight on jobs (owner_id, kind) where state in ('queued', 'active')`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index concurrently if exists jobs_owner_in_flight');
  await knex.raw('drop function if exists parley_owner_in_flight(uuid, text[])');
}
