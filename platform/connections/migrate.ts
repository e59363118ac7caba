/**
 * Runs the knex migrations in migrations/. The migration source imports each
 * file itself (rather than knex's loader), so the TypeScript migrations load
 * under tsx in production and through vitest's transform in tests alike.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Knex } from 'knex';
import { connectDb, type Db } from './db.ts';

export const migrationsDir = fileURLToPath(new URL('../../migrations', import.meta.url));

type Migration = { up(knex: Knex): Promise<void>; down(knex: Knex): Promise<void> };

const source: Knex.MigrationSource<string> = {
  async getMigrations() {
    return readdirSync(migrationsDir)
      .filter((f) => /^\d+_.+\.ts$/.test(f))
      .sort();
  },
  getMigrationName(name) {
    return name;
  },
  async getMigration(name): Promise<Migration> {
    return (await import(pathToFileURL(join(migrationsDir, name)).href)) as Migration;
  },
};

export function migrationConfig(): Knex.MigratorConfig {
  return { migrationSource: source, tableName: 'knex_migrations' };
}

export async function withDb<T>(url: string, fn: (db: Db) => Promise<T>): Promise<T> {
  const db = connectDb(url, { pool: 2 });
  try {
    return await fn(db);
  } finally {
    await db.destroy();
  }
}

export async function migrateLatest(url: string): Promise<string[]> {
  return withDb(url, async (db) => {
    const [, names] = (await db.migrate.latest(migrationConfig())) as [number, string[]];
    return names;
  });
}
