import type { Knex } from 'knex';

/**
 * Retention for the auth records that grow with use (platform/auth/retention.ts):
 *
 * - `sessions_retention`: finds expired and revoked sessions by time;
 * - the audit log's append-only trigger now lets one kind of row go, failed
 *   sign-ins (`auth.login` / `auth.refresh` with outcome `failure`), and only
 *   while `purge_failed_logins(older_than, max_rows)` runs: that function is
 *   SECURITY DEFINER and sets the transaction-local flag the trigger checks,
 *   so the API's role can be given EXECUTE on it and still no DELETE right on
 *   `audit_events`. UPDATE and TRUNCATE stay refused for every row.
 */
export async function up(knex: Knex): Promise<void> {
  const { rows } = (await knex.raw('select current_schema() as s')) as { rows: { s: string }[] };
  const table = `${quoteIdent(rows[0]!.s)}.audit_events`;
  await knex.raw(`create index sessions_retention on sessions (coalesce(revoked_at, expires_at))`);
  await knex.raw(`
    create or replace function audit_events_append_only() returns trigger language plpgsql as $$
    begin
      if tg_op = 'DELETE' and current_setting('parley.audit_purge', true) = 'failed_logins'
         and old.outcome = 'failure' and old.action in ('auth.login', 'auth.refresh') then
        return old;
      end if;
      raise exception 'audit_events is append-only';
    end $$;
  `);
  await knex.raw(`
    create function purge_failed_logins(older_than timestamptz, max_rows integer) returns integer
    language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
    declare n integer;
    begin
      perform set_config('parley.audit_purge', 'failed_logins', true);
      delete from ${table} where id in (
        select id from ${table}
        where action in ('auth.login', 'auth.refresh') and outcome = 'failure' and at < older_than
        order by id limit max_rows);
      get diagnostics n = row_count;
      perform set_config('parley.audit_purge', '', true);
      return n;
    end $$;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop function purge_failed_logins(timestamptz, integer)');
  await knex.raw(`
    create or replace function audit_events_append_only() returns trigger language plpgsql as $$
    begin raise exception 'audit_events is append-only'; end $$;
  `);
  await knex.raw('drop index sessions_retention');
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
