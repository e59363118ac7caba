/**
 * Postgres from Debian's packages: a private cluster made with initdb and run
 * with pg_ctl as a non-root user (Postgres refuses to run as root), bound to
 * 127.0.0.1 on a non-default port, with an app database and a test database.
 *
 * Where the cluster lives: as an ordinary user, under the data folder, which
 * that user owns. As root the server runs as `postgres`, which may not be
 * able to walk into the clone (a home folder of mode 0700, say). So the
 * cluster goes to a folder `postgres` owns, outside the clone and keyed by
 * the data folder's path (`~postgres/parley/<name>-<hash>`), and the data
 * folder keeps a pointer to it (`.data/postgres/cluster`). Nothing of the
 * user's own folders is loosened. The data folder owns that cluster: a keyed
 * folder that this data folder's pointer does not name was left by an earlier
 * clone at the same path (deleted without `purge`, or moved away), and `up`
 * stops it and moves it aside (`<folder>.orphaned-<time>`, never deleted)
 * rather than hand the new clone the old one's users, budgets and jobs. A
 * clone whose cluster was moved aside that way is told where it went. No Unix socket is made (TCP only), so long
 * paths and spaces never reach a socket name.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import pg from 'pg';
import { ensureDebianPackages, log, run, waitUntil, ServiceProblem } from './proc.ts';
import { ensurePortFree } from './ports.ts';
import { settings } from './settings.ts';
import type { Service } from './service.ts';

const localDir = join(settings.dataDir, 'postgres');
const pointerFile = join(localDir, 'cluster');
const role = 'parley';

function binDir(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(base, versions[0], 'bin') : undefined;
}

/** The home folder of the `postgres` account, which owns clusters when we are root. */
function postgresHome(): string {
  const line = run('getent', ['passwd', 'postgres']).trim();
  const home = line.split(':')[5];
  if (!home || home === '/' || home === '/nonexistent') return '/var/lib/postgresql';
  return home;
}

/** `~postgres/parley/<clone name>-<hash of the data folder's path>`: the stem of this data folder's cluster folders. */
function keyedStem(): string {
  const key = createHash('sha256').update(settings.dataDir).digest('hex').slice(0, 12);
  const name =
    basename(settings.repoRoot)
      .replace(/[^\w.-]+/g, '_')
      .slice(0, 40) || 'parley';
  return join(postgresHome(), 'parley', `${name}-${key}`);
}

let fresh: string | undefined;

/**
 * The folder that holds `data/` and `postgres.log`. Root: the pointer's target
 * if present, else a new folder under ~postgres: the keyed stem plus a random
 * suffix, so two clones that stood at the same path (one moved away, one new)
 * never share a cluster.
 */
export function clusterDir(): string {
  if (!settings.isRoot) return localDir;
  if (existsSync(pointerFile)) {
    const target = readFileSync(pointerFile, 'utf8').trim();
    if (target) return target;
  }
  // A cluster made inside the clone by an earlier version stays where it is.
  if (existsSync(join(localDir, 'data', 'PG_VERSION'))) return localDir;
  fresh ??= `${keyedStem()}-${randomBytes(4).toString('hex')}`;
  return fresh;
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

/** The port recorded by a running postmaster of this cluster (line 4 of postmaster.pid), if any. */
function runningPort(pgdata: string): number | undefined {
  const file = join(pgdata, 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  const lines = readFileSync(file, 'utf8').split('\n');
  const pid = Number(lines[0]);
  try {
    process.kill(pid, 0);
  } catch {
    return undefined;
  }
  const port = Number(lines[3]);
  return Number.isInteger(port) ? port : undefined;
}

/**
 * As root, a keyed cluster folder that the data folder's pointer does not name: left by an earlier
 * clone at the same path (deleted without `purge`), or by a clone moved elsewhere, or by this one
 * before its data folder was deleted. Its server is stopped (a clean `pg_ctl stop -m fast`) if it
 * still runs, and the folder is moved aside, not deleted, so a fresh data folder means fresh
 * databases and nothing is lost: a moved clone, or a user who wants the old data back, finds it
 * under the name logged here. Returns the new name.
 */
export function retireOrphanCluster(bin: string | undefined): string[] {
  if (!settings.isRoot || existsSync(pointerFile) || existsSync(join(localDir, 'data', 'PG_VERSION'))) return [];
  const stem = keyedStem();
  const parent = dirname(stem);
  if (!existsSync(parent)) return [];
  // The stem itself (made before clusters had a random suffix) and the stem with one.
  const mine = new RegExp(`^${basename(stem).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(-[0-9a-f]{8})?$`);
  const moved: string[] = [];
  for (const name of readdirSync(parent).filter((n) => mine.test(n))) {
    const dir = join(parent, name);
    const pgdata = join(dir, 'data');
    if (bin && runningPort(pgdata) !== undefined) {
      try {
        asOwner(join(bin, 'pg_ctl'), ['-D', pgdata, '-m', 'fast', '-w', '-t', '60', 'stop']);
      } catch (err) {
        throw new ServiceProblem(
          'postgres',
          `a cluster no data folder of this clone names (${dir}) is running and would not stop: ${String(err)}`,
          `stop it (pg_ctl -D ${pgdata} stop), or set PARLEY_PG_PORT`,
        );
      }
    }
    const aside = `${dir}.orphaned-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    renameSync(dir, aside);
    log(
      'postgres',
      `moved ${dir} aside to ${aside}: a cluster an earlier clone at this path left (no pointer in this data folder names it); this clone starts a new one. Remove the old one with rm -rf when you do not need it, or move it back to keep using it`,
    );
    moved.push(aside);
  }
  return moved;
}

/** As root, with a pointer whose cluster folder is gone: one a clone at our old path moved aside. */
function movedAside(target: string): string[] {
  const parent = dirname(target);
  if (!existsSync(parent)) return [];
  return readdirSync(parent)
    .filter((n) => n.startsWith(`${basename(target)}.orphaned-`))
    .map((n) => join(parent, n));
}

function prepareCluster(bin: string, dir: string, pgdata: string): void {
  if (settings.isRoot) {
    try {
      run('id', ['-u', 'postgres']);
    } catch {
      throw new ServiceProblem(
        'postgres',
        'no non-root `postgres` user to own the cluster',
        "useradd --system postgres (Debian's postgresql package normally creates it)",
      );
    }
    mkdirSync(localDir, { recursive: true });
    writeFileSync(pointerFile, `${dir}\n`);
    // `postgres` owns its folders from its home down; the parents keep their own modes.
    mkdirSync(dir, { recursive: true });
    run('chown', ['postgres:postgres', join(dir, '..'), dir]);
    run('chmod', ['0700', dir]);
  } else {
    mkdirSync(dir, { recursive: true });
  }
  if (!existsSync(join(pgdata, 'PG_VERSION'))) {
    log('postgres', `initdb ${pgdata}`);
    if (settings.isRoot) asOwner('/bin/mkdir', ['-p', '-m', '0700', pgdata]);
    else mkdirSync(pgdata, { recursive: true, mode: 0o700 });
    asOwner(join(bin, 'initdb'), ['-D', pgdata, '-U', role, '--auth=trust', '-E', 'UTF8', '--no-locale']);
  }
}

export const postgres: Service = {
  name: 'postgres',
  env: () => ({ DATABASE_URL: appUrl(), PARLEY_TEST_DATABASE_URL: testUrl() }),
  external: () => settings.external.postgres !== undefined,
  async preflight() {
    if (settings.external.postgres) return;
    // A cluster an earlier clone at this path left is stopped and moved aside first (it may hold our port).
    retireOrphanCluster(binDir());
    // Our own cluster already listening is fine.
    if (runningPort(join(clusterDir(), 'data')) === settings.ports.postgres) return;
    await ensurePortFree('postgres', settings.ports.postgres, 'PARLEY_PG_PORT');
  },
  async up() {
    if (settings.external.postgres) {
      if (!(await reachable(appUrl())))
        throw new ServiceProblem(
          'postgres',
          `DATABASE_URL=${appUrl()} is not reachable`,
          'start that Postgres, or unset DATABASE_URL to let Parley start its own',
        );
      const t = new URL(testUrl());
      const admin = new URL(appUrl());
      await ensureDatabase(admin.toString(), t.pathname.slice(1)).catch((cause) => log('postgres', `could not create the test database: ${String(cause)}`));
      return 'external, reachable';
    }
    const adminUrl = `postgres://${role}@127.0.0.1:${settings.ports.postgres}/postgres`;
    // A left-behind cluster was already stopped and moved aside by preflight, which every up runs first.
    const dir = clusterDir();
    const pgdata = join(dir, 'data');
    if (settings.isRoot && existsSync(pointerFile) && !existsSync(join(pgdata, 'PG_VERSION'))) {
      const aside = movedAside(dir);
      if (aside.length)
        throw new ServiceProblem(
          'postgres',
          `this clone's cluster ${dir} was moved aside (to ${aside.join(', ')}) by a newer clone at this clone's old path`,
          `mv '${aside.at(-1)}' '${dir}' to use it again, or rm ${pointerFile} to start a new one`,
        );
    }
    let state = 'already running';
    if (runningPort(pgdata) !== settings.ports.postgres || !(await reachable(adminUrl))) {
      await ensurePortFree('postgres', settings.ports.postgres, 'PARLEY_PG_PORT');
      ensureDebianPackages('postgres', ['postgresql'], () => binDir() !== undefined);
      const bin = binDir()!;
      prepareCluster(bin, dir, pgdata);
      const logFile = join(dir, 'postgres.log');
      // No Unix socket: clients use TCP, and a socket path under a deep or spaced folder would not fit.
      const opts = `-p ${settings.ports.postgres} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=300 -c shared_buffers=128MB`;
      asOwner(join(bin, 'pg_ctl'), ['-D', pgdata, '-l', logFile, '-o', opts, '-w', '-t', '60', 'start']);
      await waitUntil('postgres', () => reachable(adminUrl), 30_000, logFile);
      state = 'started';
    }
    await ensureDatabase(adminUrl, 'parley');
    await ensureDatabase(adminUrl, 'parley_test');
    return state;
  },
  async down() {
    if (settings.external.postgres) return 'external, left alone';
    const bin = binDir();
    const pgdata = join(clusterDir(), 'data');
    if (!bin || runningPort(pgdata) === undefined) return 'not running';
    asOwner(join(bin, 'pg_ctl'), ['-D', pgdata, '-m', 'fast', '-w', 'stop']);
    return 'stopped';
  },
  async purge() {
    if (settings.external.postgres) return 'external, left alone';
    const dir = clusterDir();
    rmSync(dir, { recursive: true, force: true });
    rmSync(localDir, { recursive: true, force: true });
    return `removed ${dir}`;
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
