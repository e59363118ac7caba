import knex, { type Knex } from 'knex';
import pg from 'pg';

// bigint (int8) columns come back as strings by default; our counters fit in a double.
pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => Number(v));

export type Db = Knex;

export function connectDb(url: string, opts: { pool?: number } = {}): Db {
  return knex({
    client: 'pg',
    connection: url,
    pool: { min: 0, max: opts.pool ?? 10 },
    // knex waits 60 s for a connection by default; fail fast instead, so a dead Postgres is a 503, not a hang.
    acquireConnectionTimeout: 5_000,
  });
}
