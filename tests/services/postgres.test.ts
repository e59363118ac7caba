/** Postgres answers as the real server, on the database the tests are given. */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceEnv } from './service-env.ts';

const client = new pg.Client({ connectionString: serviceEnv('DATABASE_URL'), connectionTimeoutMillis: 5000 });

beforeAll(async () => {
  await client.connect();
});

afterAll(async () => {
  await client.end();
});

describe('Postgres', () => {
  it('reports a PostgreSQL server version', async () => {
    const { rows } = await client.query<{ version: string }>('select version() as version');
    expect(rows[0]?.version).toMatch(/^PostgreSQL \d+/);
  });
});
