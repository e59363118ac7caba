/**
 * scripts/reset-test-db.ts, which `npm test` runs before vitest: the test
 * database comes back empty (what an earlier run wrote is gone), and a
 * database whose name does not say it is for tests is left as it is. Its
 * sweep of left-over throwaway databases (--drop-leftovers) is not run here:
 * it would drop other suites' running ones.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';

const server = process.env.DATABASE_URL!;
const urlOf = (name: string) => Object.assign(new URL(server), { pathname: `/${name}` }).toString();
const made: string[] = [];

async function sql<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(text)).rows;
  } finally {
    await c.end();
  }
}

/** A database holding one table, `written`, as an earlier run would leave it. */
async function databaseWithData(name: string): Promise<string> {
  await sql(server, `create database ${name}`);
  made.push(name);
  await sql(urlOf(name), 'create table written (x int); insert into written values (1)');
  return urlOf(name);
}

const tables = async (url: string) => (await sql<{ t: string }>(url, `select tablename as t from pg_tables where schemaname = 'public'`)).map((r) => r.t);

function reset(url: string) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'scripts/reset-test-db.ts'], {
    env: { ...process.env, PARLEY_TEST_DATABASE_URL: url },
    encoding: 'utf8',
  });
}

afterAll(async () => {
  for (const name of made) await sql(server, `drop database if exists ${name} with (force)`);
});

describe('the test database reset', () => {
  it('empties a test database, even one with a session open on it', async () => {
    const url = await databaseWithData(`reset_test_${randomUUID().slice(0, 8)}`);
    const open = new pg.Client({ connectionString: url });
    await open.connect();
    open.on('error', () => {});
    const r = reset(url);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/emptied/);
    expect(await tables(url)).toEqual([]);
    await open.end().catch(() => {});
  });

  it('leaves a database whose name does not say it is for tests as it is', async () => {
    const url = await databaseWithData(`reset_keep_${randomUUID().slice(0, 8)}`);
    const r = reset(url);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/not reset/);
    expect(await tables(url)).toEqual(['written']);
  });
});
