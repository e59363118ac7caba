/**
 * `npm test` starts from an empty test database (scripts/test.sh runs this
 * before vitest; the suites' global setup migrates it). What an earlier run
 * left there, a budget rule written by a fuzzer say, cannot decide this run's
 * answers. With `--drop-leftovers`, as test.sh runs it, the throwaway
 * databases an interrupted run left behind (tests/support/private-database.ts:
 * `parley_<tag>_<8 hex>`) are dropped too; never while suites run, as theirs
 * look the same.
 *
 *   npx tsx scripts/reset-test-db.ts [--drop-leftovers]    (PARLEY_TEST_DATABASE_URL set, as `services -- env` prints it)
 *
 * Only a database whose name says it is for tests (it contains `test`) is
 * dropped; any other is left as it is, with a note.
 */
import pg from 'pg';

const url = process.env.PARLEY_TEST_DATABASE_URL;
if (!url) {
  process.stderr.write('reset-test-db: PARLEY_TEST_DATABASE_URL is not set (eval "$(npm run -s services -- env)")\n');
  process.exit(2);
}
const name = decodeURIComponent(new URL(url).pathname.slice(1));
const quote = (id: string) => `"${id.replace(/"/g, '""')}"`;

// Connected to the server's `postgres` database: a database cannot drop itself.
const admin = new pg.Client({ connectionString: Object.assign(new URL(url), { pathname: '/postgres' }).toString(), connectionTimeoutMillis: 10_000 });
try {
  await admin.connect();
} catch (err) {
  // An external server this user may not administer: the suites still run, on what the database holds.
  process.stderr.write(`[test] ${name}: not reset, the server's postgres database refused us (${String(err)})\n`);
  process.exit(0);
}
try {
  const leftovers = process.argv.includes('--drop-leftovers')
    ? await admin.query<{ datname: string }>(`select datname from pg_database where datname ~ '^parley_[a-z0-9_]+_[0-9a-f]{8}$'`)
    : { rows: [], rowCount: 0 };
  for (const { datname } of leftovers.rows) await admin.query(`drop database if exists ${quote(datname)} with (force)`);
  if (/test/i.test(name)) {
    await admin.query(`drop database if exists ${quote(name)} with (force)`);
    await admin.query(`create database ${quote(name)}`);
    process.stderr.write(
      `[test] ${name}: a new, empty test database${leftovers.rowCount ? ` (and ${leftovers.rowCount} left-over throwaway ones dropped)` : ''}\n`,
    );
  } else {
    process.stderr.write(`[test] ${name}: not reset (its name does not say it is for tests); the suites run on what it holds\n`);
  }
} finally {
  await admin.end();
}
