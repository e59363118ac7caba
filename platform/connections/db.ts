import knex, { type Knex } from 'knex';
import pg from 'pg';

// bigint (int8) columns come back as strings by default; our counters fit in a double.
pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => Number(v));

export type Db = Knex;

/**
 * A knex pool over node-postgres. Every wait is bounded, so a dead or hung
 * Postgres fails a request rather than holding it: acquiring a pooled
 * connection (knex waits 60 s by default), opening one, and, with
 * `queryTimeoutMs`, each query (the API's request path sets it; a timed-out
 * query's connection finishes it when the server answers again).
 */
export function connectDb(url: string, opts: { pool?: number; acquireTimeoutMs?: number; connectTimeoutMs?: number; queryTimeoutMs?: number } = {}): Db {
  return knex({
    client: 'pg',
    connection: {
      connectionString: url,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 5_000,
      ...(opts.queryTimeoutMs ? { query_timeout: opts.queryTimeoutMs } : {}),
    },
    pool: { min: 0, max: opts.pool ?? 10 },
    acquireConnectionTimeout: opts.acquireTimeoutMs ?? 5_000,
  });
}

/** One round trip to Postgres; rejects when it does not answer. */
export async function pingPostgres(db: Db): Promise<void> {
  await db.raw('select 1');
}

/** SQL for a timestamptz column as ISO 8601 UTC to the microsecond (a JS Date stops at the millisecond): page cursors hold it, so rows of one millisecond are not skipped. */
export const microsecondInstant = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
