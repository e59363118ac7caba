/**
 * Postgres from Debian's packages: a private cluster made with initdb and run
 * with pg_ctl as a non-root user (Postgres refuses to run as root), bound to
 * 127.0.0.1 on a non-default port, with an app database and a test database.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { ensureDebianPackages, log, run, waitUntil, ServiceProblem } from './proc.ts';
import { settings } from './settings.ts';
import type { Service } from './service.ts';

const dir = join(settings.dataDir, 'postgres');
const pgdata = join(dir, 'data');
const sockDir = join(dir, 'run');
const logFile = join(dir, 'postgres.log');
const role = 'parley';

function binDir(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(base, versions[0], 'bin') : undefined;
}

function appUrl(): string {
  return settings.external.postgres ?? `postgres://${role}@127.0.0.1:${settings.ports.postgres}/parley`;
}

function testUrl(): string {
  if (settings.testDatabaseUrl) return settings.testDatabaseUrl;
  const u = new URL(appUrl());
  u.pathname = `${u.pathname.replace(/^\//, '') || 'parley'}_test`;
  return u.toString();
}

async function query(url: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  await client.connect();
  try {
    return await client.query(sql, params);
  } finally {
    await client.end();
  }
}

async function reachable(url: string): Promise<boolean> {
  try {
    await query(url, 'select 1');
    return true;
  } catch {
    return false;
  }
}

/** Runs a Postgres binary as the cluster owner: `postgres` when we are root. */
function asOwner(bin: string, args: string[]): string {
  if (settings.isRoot) return run('runuser', ['-u', 'postgres', '--', bin, ...args], { cwd: '/' });
  return run(bin, args);
}

async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const r = await query(adminUrl, 'select 1 from pg_database where datname = $1', [name]);
  if (r.rowCount === 0) await query(adminUrl, `create database "${name.replace(/"/g, '""')}"`);
}

export const postgres: Service = {
  name: 'postgres',
  env: () => ({ DATABASE_URL: appUrl(), PARLEY_TEST_DATABASE_URL: testUrl() }),
  external: () => settings.external.postgres !== undefined,
  async up() {
    if (settings.external.postgres) {
      if (!(await reachable(appUrl()))) throw new ServiceProblem('postgres', `DATABASE_URL=${appUrl()} is not reachable`, 'start that Postgres, or unset DATABASE_URL to let Parley start its own');
      const t = new URL(testUrl());
      const admin = new URL(appUrl());
      await ensureDatabase(admin.toString(), t.pathname.slice(1)).catch((cause) => log('postgres', `could not create the test database: ${String(cause)}`));
      return 'external, reachable';
    }
    const adminUrl = `postgres://${role}@127.0.0.1:${settings.ports.postgres}/postgres`;
    if (!(await reachable(adminUrl))) {
      ensureDebianPackages('postgres', ['postgresql'], () => binDir() !== undefined);
      const bin = binDir()!;
      mkdirSync(sockDir, { recursive: true });
      if (settings.isRoot) {
        try {
          run('id', ['-u', 'postgres']);
        } catch {
          throw new ServiceProblem('postgres', 'no non-root `postgres` user to own the cluster', 'useradd --system postgres (Debian\'s postgresql package normally creates it)');
        }
        for (const d of [dir, sockDir]) run('chown', ['postgres:postgres', d]);
      }
      if (!existsSync(join(pgdata, 'PG_VERSION'))) {
        log('postgres', `initdb ${pgdata}`);
        mkdirSync(pgdata, { recursive: true });
        if (settings.isRoot) run('chown', ['postgres:postgres', pgdata]);
        asOwner(join(bin, 'initdb'), ['-D', pgdata, '-U', role, '--auth=trust', '-E', 'UTF8', '--no-locale']);
      }
      if (settings.isRoot) run('chown', ['-R', 'postgres:postgres', dir]);
      const opts = `-p ${settings.ports.postgres} -c listen_addresses=127.0.0.1 -k ${sockDir} -c max_connections=300 -c shared_buffers=128MB`;
      asOwner(join(bin, 'pg_ctl'), ['-D', pgdata, '-l', logFile, '-o', opts, '-w', '-t', '60', 'start']);
      await waitUntil('postgres', () => reachable(adminUrl), 30_000, logFile);
    }
    await ensureDatabase(adminUrl, 'parley');
    await ensureDatabase(adminUrl, 'parley_test');
    return 'running';
  },
  async down() {
    if (settings.external.postgres) return 'external, left alone';
    const bin = binDir();
    if (!bin || !existsSync(join(pgdata, 'postmaster.pid'))) return 'not running';
    asOwner(join(bin, 'pg_ctl'), ['-D', pgdata, '-m', 'fast', '-w', 'stop']);
    return 'stopped';
  },
  async status() {
    try {
      const r = await query(appUrl(), 'select version() as v');
      return `reachable (${String(r.rows[0]?.v).split(' on ')[0]})`;
    } catch {
      return 'down';
    }
  },
};
