/**
 * A throwaway database on the test Postgres server, for suites whose writes
 * would disturb the others sharing the test database (rolling migrations
 * back, a bootstrap admin, global budgets written by a fuzzer). `create()`
 * makes it (migrated to latest unless asked not to); `drop()` removes it,
 * closing any connection still open to it.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { migrateLatest } from '../../platform/connections/index.ts';

export interface PrivateDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** The comment every throwaway database carries: what scripts/reset-test-db.ts sweeps, and nothing else. */
export const throwawayMark = 'parley: throwaway test database (tests/support/private-database.ts)';

/** `tag` names it (`parley_<tag>_<8 hex>`); the server is the one DATABASE_URL points at. */
export async function createPrivateDatabase(tag: string, opts: { migrate?: boolean } = {}): Promise<PrivateDatabase> {
  const adminUrl = process.env.DATABASE_URL!;
  const name = `parley_${tag}_${randomUUID().slice(0, 8)}`;
  const url = Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();
  await adminQuery(adminUrl, `create database ${name}`);
  await adminQuery(adminUrl, `comment on database ${name} is '${throwawayMark}'`);
  if (opts.migrate !== false) await migrateLatest(url);
  return { name, url, drop: () => adminQuery(adminUrl, `drop database if exists ${name} with (force)`) };
}
