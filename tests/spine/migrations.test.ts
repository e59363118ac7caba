import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrationConfig, withDb } from '../../platform/connections/index.ts';
import { createPrivateDatabase, type PrivateDatabase } from '../support/private-database.ts';

// A throwaway database, so rolling back cannot disturb the suites sharing the test database.
let database: PrivateDatabase;
let url: string;
beforeAll(async () => {
  database = await createPrivateDatabase('mig', { migrate: false });
  url = database.url;
});
afterAll(() => database?.drop());

async function tables(): Promise<string[]> {
  return withDb(url, async (db) =>
    (await db('pg_tables').where({ schemaname: 'public' }).pluck('tablename')).filter((t: string) => !t.startsWith('knex_')).sort(),
  );
}

describe('migrations', () => {
  it('go up, down and up again, and keep job rows across the auth migration', async () => {
    await withDb(url, (db) => db.migrate.up(migrationConfig()));
    await withDb(url, (db) =>
      db('jobs').insert({ id: randomUUID(), kind: 'system.ping', kind_version: 1, queue: 'system', priority: 'normal', max_attempts: 1, input: '{}' }),
    );
    await withDb(url, (db) => db.migrate.latest(migrationConfig()));
    const afterUp = await tables();
    expect(afterUp).toEqual(expect.arrayContaining(['jobs', 'users', 'sessions', 'refresh_tokens', 'api_keys', 'signing_keys', 'audit_events']));
    const owner = await withDb(url, (db) => db('jobs').first('owner_id'));
    expect(owner.owner_id).toBe('00000000-0000-4000-8000-000000000000');

    await withDb(url, (db) => db.migrate.rollback(migrationConfig(), true));
    expect(await tables()).toEqual([]);

    await withDb(url, (db) => db.migrate.latest(migrationConfig()));
    expect(await tables()).toEqual(afterUp);
  });
});
