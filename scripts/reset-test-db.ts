/**
 * `npm test` starts from an empty test database (scripts/test.sh runs this
 * before vitest; the suites' global setup migrates it). What an earlier run
 * left there, a budget rule written by a fuzzer say, cannot decide this run's
 * answers. The reset empties the database in place (its `public` schema
 * dropped and made again), so it needs no right to create databases and
 * cannot lose the database itself.
 *
 * With `--drop-leftovers`, as test.sh runs it, the throwaway databases an
 * interrupted run left behind are dropped too: only those
 * tests/support/private-database.ts made, which it marks with a comment.
 * Never while suites run on the same server, as theirs look the same.
 *
 *   npx tsx scripts/reset-test-db.ts [--drop-leftovers]    (PARLEY_TEST_DATABASE_URL set, as `services -- env` prints it)
 *
 * Only a database whose name says it is for tests (it contains `test`) is
 * emptied; any other is left as it is, with a note.
 */
import pg from 'pg';
import { throwawayMark } from '../tests/support/private-database.ts';

const url = process.env.PARLEY_TEST_DATABASE_URL;
if (!url) {
  process.stderr.write('reset-test-db: PARLEY_TEST_DATABASE_URL is not set (eval "$(npm run -s services -- env)")\n');
  process.exit(2);
}
const name = decodeURIComponent(new URL(url).pathname.slice(1));
const quote = (id: string) => `"${id.replace(/"/g, '""')}"`;

async function withClient<T>(connectionString: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString, connectionTimeoutMillis: 10_000 });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

if (/test/i.test(name)) {
  await withClient(url, async (c) => {
    await c.query('drop schema if exists public cascade');
    await c.query('create schema public');
  });
  process.stderr.write(`[test] ${name}: emptied (a new public schema)\n`);
} else {
  process.stderr.write(`[test] ${name}: not reset (its name does not say it is for tests); the suites run on what it holds\n`);
}

if (process.argv.includes('--drop-leftovers')) {
  try {
    const dropped = await withClient(url, async (c) => {
      const { rows } = await c.query<{ datname: string }>(
        `select datname from pg_database d where shobj_description(d.oid, 'pg_database') = $1 and datname <> current_database()`,
        [throwawayMark],
      );
      for (const { datname } of rows) await c.query(`drop database if exists ${quote(datname)} with (force)`);
      return rows.length;
    });
    if (dropped) process.stderr.write(`[test] dropped ${dropped} throwaway database(s) an earlier run left\n`);
  } catch (err) {
    process.stderr.write(`[test] left-over throwaway databases not dropped: ${String(err)}\n`);
  }
}
