/**
 * The first run from anywhere: a checkout in a private (0700) folder, with a
 * space in its path, brings its own Postgres up from its own data folder and
 * tears it down, as root (the server runs as `postgres`) and as an ordinary
 * user; a second checkout on the same machine, while the first one's
 * services hold the ports, stops at once with one line per port and starts
 * nothing.
 *
 * The checkout is the working tree's tracked and untracked files (what a
 * clone of this commit holds), with node_modules linked from this one.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, chownSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { serviceUrlNames } from './service-env.ts';
import { freePort } from '../support/private-services.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const isRoot = process.getuid?.() === 0;
const made: string[] = [];

/**
 * A checkout of the working tree. `ownModules` gives it its own node_modules
 * (hard links where the file system allows, else a copy) instead of a link to
 * this one: another user may not be able to reach into this clone's folder.
 */
function checkout(parent: string, name: string, ownModules = false): string {
  const dir = join(parent, name);
  const files = spawnSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: repoRoot, encoding: 'utf8' }).stdout.split('\0').filter(Boolean);
  for (const f of files) {
    if (!existsSync(join(repoRoot, f))) continue;
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    copyFileSync(join(repoRoot, f), join(dir, f));
  }
  if (!ownModules) {
    symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
    return dir;
  }
  const linked = spawnSync('cp', ['-al', join(repoRoot, 'node_modules'), join(dir, 'node_modules')]);
  if (linked.status !== 0) {
    rmSync(join(dir, 'node_modules'), { recursive: true, force: true });
    const copied = spawnSync('cp', ['-a', join(repoRoot, 'node_modules'), join(dir, 'node_modules')]);
    if (copied.status !== 0) throw new Error(`could not copy node_modules: ${copied.stderr}`);
  }
  return dir;
}

function privateFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'parley-clone-'));
  chmodSync(dir, 0o700);
  made.push(dir);
  return dir;
}

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

function manage(cwd: string, args: string[], extraEnv: Record<string, string>, asUser?: string): Promise<Outcome> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv };
  for (const n of [...serviceUrlNames, 'PARLEY_TEST_DATABASE_URL', 'PARLEY_DATA_DIR']) delete env[n];
  const node = [process.execPath, '--import', 'tsx', 'scripts/services/main.ts', ...args];
  const [cmd, ...argv] = asUser ? ['runuser', '-u', asUser, '--', ...node] : node;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd!, argv, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function answers(port: number): Promise<string> {
  const client = new pg.Client({ connectionString: `postgres://parley@127.0.0.1:${port}/parley`, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    return (await client.query<{ db: string }>('select current_database() as db')).rows[0]!.db;
  } finally {
    await client.end();
  }
}

afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

describe('a clone in a private folder', () => {
  it('brings its own Postgres up, answers, and purges it, leaving the folder modes as they were', async () => {
    const parent = privateFolder();
    const clone = checkout(parent, 'my clone');
    const port = await freePort();
    const env = { PARLEY_PG_PORT: String(port) };

    const up = await manage(clone, ['up', 'postgres'], env);
    try {
      expect(up.code, up.stderr).toBe(0);
      expect(up.stderr).toMatch(/postgres\s+started/);
      expect(await answers(port)).toBe('parley');
      expect(statSync(parent).mode & 0o777).toBe(0o700);
      if (isRoot) {
        // The cluster lives where `postgres` can reach it, outside the clone; the clone keeps a pointer.
        const cluster = readFileSync(join(clone, '.data', 'postgres', 'cluster'), 'utf8').trim();
        expect(cluster.startsWith(clone)).toBe(false);
        expect(existsSync(join(cluster, 'data', 'PG_VERSION'))).toBe(true);
        const again = await manage(clone, ['up', 'postgres'], env);
        expect(again.code, again.stderr).toBe(0);
        expect(again.stderr).toMatch(/postgres\s+already running/);
        const purge = await manage(clone, ['purge', 'postgres'], env);
        expect(purge.code, purge.stderr).toBe(0);
        expect(existsSync(cluster)).toBe(false);
      }
    } finally {
      await manage(clone, ['purge', 'postgres'], env);
    }
    await expect(answers(port)).rejects.toThrow();
  });

  it.runIf(isRoot)(
    'a clone made where another stood starts from empty databases; the old cluster is stopped and moved aside, and the moved clone is told where',
    async () => {
      // CI clones to the same path on a machine that keeps ~postgres: the old clone's test database, with what
      // its fuzzer wrote (a role's token budget of 1, say), would otherwise be the new clone's.
      const parent = privateFolder();
      const port = await freePort();
      const env = { PARLEY_PG_PORT: String(port) };
      const first = checkout(parent, 'repo');
      const moved = join(parent, 'repo-moved');
      const asides: string[] = [];
      try {
        expect((await manage(first, ['up', 'postgres'], env)).code).toBe(0);
        const cluster = readFileSync(join(first, '.data', 'postgres', 'cluster'), 'utf8').trim();
        const c = new pg.Client({ connectionString: `postgres://parley@127.0.0.1:${port}/parley_test` });
        await c.connect();
        await c.query('create table left_behind (x int)');
        await c.end();
        // Moved away with its server still running; a new clone at the old path.
        renameSync(first, moved);
        const second = checkout(parent, 'repo');
        const up = await manage(second, ['up', 'postgres'], env);
        expect(up.code, up.stderr).toBe(0);
        const aside = new RegExp(`moved ${cluster.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} aside to (\\S+\\.orphaned-[^:]+):`).exec(up.stderr)?.[1];
        expect(aside, up.stderr).toBeDefined();
        asides.push(aside!);
        expect(up.stderr).toMatch(/postgres\s+started/);
        const d = new pg.Client({ connectionString: `postgres://parley@127.0.0.1:${port}/parley_test` });
        await d.connect();
        const { rows } = await d.query(`select count(*)::int as n from pg_tables where tablename = 'left_behind'`);
        await d.end();
        expect(rows[0].n).toBe(0);
        // Nothing was deleted: the old cluster's files are where the log says; the new clone has its own.
        expect(existsSync(join(aside!, 'data', 'PG_VERSION'))).toBe(true);
        expect(readFileSync(join(second, '.data', 'postgres', 'cluster'), 'utf8').trim()).not.toBe(cluster);
        // The clone that owns the new one keeps it: a second up is not a fresh start.
        const again = await manage(second, ['up', 'postgres'], env);
        expect(again.stderr).toMatch(/postgres\s+already running/);
        expect(again.stderr).not.toContain('aside');
        // The moved clone is told where its cluster went, and starts nothing.
        const lost = await manage(moved, ['up', 'postgres'], { PARLEY_PG_PORT: String(await freePort()) });
        expect(lost.code).not.toBe(0);
        expect(lost.stderr).toContain(`was moved aside (to ${aside})`);
      } finally {
        await manage(join(parent, 'repo'), ['purge', 'postgres'], env);
        for (const a of asides) rmSync(a, { recursive: true, force: true });
      }
      await expect(answers(port)).rejects.toThrow();
    },
  );

  it.runIf(isRoot)('works for an ordinary user too, with the cluster inside their own clone', async () => {
    // `nobody` owns a 0700 folder of its own; the cache goes there too (its home does not exist).
    const parent = privateFolder();
    const home = join(parent, 'home');
    // Its own node_modules: `nobody` cannot reach into this clone when it sits in a 0700 home folder.
    const clone = checkout(parent, 'work tree', true);
    const owner = spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' });
    const uid = Number(owner.stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).stdout.trim());
    mkdirSync(home);
    // Everything but node_modules (hard links share their owner with this clone's files; reading them is enough).
    spawnSync('find', [parent, '-path', '*/node_modules', '-prune', '-o', '-exec', 'chown', '-h', `${uid}:${gid}`, '{}', '+']);
    chownSync(parent, uid, gid);
    const port = await freePort();
    const env = { PARLEY_PG_PORT: String(port), PARLEY_CACHE_DIR: join(home, 'cache'), HOME: home };
    const up = await manage(clone, ['up', 'postgres'], env, 'nobody');
    try {
      expect(up.code, up.stderr).toBe(0);
      expect(await answers(port)).toBe('parley');
      expect(existsSync(join(clone, '.data', 'postgres', 'data', 'PG_VERSION'))).toBe(true);
    } finally {
      await manage(clone, ['purge', 'postgres'], env, 'nobody');
    }
    await expect(answers(port)).rejects.toThrow();
  });
});

describe('a clone whose path has spaces', () => {
  it('starts the API and the workers (regression: their entry check compared a URL with a raw path, and they exited at once, silently)', async () => {
    const clone = checkout(privateFolder(), 'my parley');
    const port = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), PARLEY_KEY_PREFIX: `clone${port}`, LOG_LEVEL: 'info' };
    const api = spawn(process.execPath, ['--import', 'tsx', 'api/main.ts'], { cwd: clone, env, stdio: 'ignore' });
    const workers = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], { cwd: clone, env, stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      let out = '';
      workers.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      const ready = new Promise<string>((resolve) => {
        workers.stdout!.on('data', () => out.includes('workers ready') && resolve('ready'));
        workers.once('exit', (code) => resolve(`exited ${code}`));
      });
      expect(await ready).toBe('ready');
      let healthy = 0;
      for (let i = 0; i < 300 && healthy !== 200; i++) {
        if (api.exitCode !== null) break;
        healthy = await fetch(`http://127.0.0.1:${port}/healthz`).then(
          (r) => r.status,
          () => 0,
        );
        if (healthy !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      expect(api.exitCode).toBeNull();
      expect(healthy).toBe(200);
    } finally {
      api.kill('SIGTERM');
      workers.kill('SIGTERM');
    }
  });
});

describe('a second clone on the same machine', () => {
  it('stops with one line per port held by the first clone, naming the variable to set, and starts nothing', async () => {
    // The ports the running services hold (the first clone's), whatever they are here.
    const held: Record<string, { service: string; port: number; portVar: string }> = {};
    const spec = [
      ['REDIS_URL', 'redis', 'PARLEY_REDIS_PORT', 6379],
      ['DATABASE_URL', 'postgres', 'PARLEY_PG_PORT', 5432],
      ['MONGODB_URL', 'mongo', 'PARLEY_MONGO_PORT', 27017],
      ['OLLAMA_HOST', 'ollama', 'PARLEY_OLLAMA_PORT', 11434],
    ] as const;
    const env: Record<string, string> = {};
    const listeners: Server[] = [];
    for (const [urlVar, service, portVar, dflt] of spec) {
      const raw = process.env[urlVar]!;
      const u = new URL(raw.includes('://') ? raw : `http://${raw}`);
      let port = u.port ? Number(u.port) : dflt;
      if (!['127.0.0.1', 'localhost'].includes(u.hostname)) {
        // An external service: hold a port ourselves, as another clone would.
        const s = createServer();
        await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
        listeners.push(s);
        port = (s.address() as { port: number }).port;
      }
      held[service] = { service, port, portVar };
      env[portVar] = String(port);
    }
    const clone = checkout(privateFolder(), 'second');
    try {
      const up = await manage(clone, ['up'], env);
      expect(up.code).toBe(1);
      const lines = up.stderr.trim().split('\n');
      for (const h of Object.values(held)) {
        const mine = lines.filter((l) => l.includes(`${h.service}: port ${h.port} is taken by`));
        expect(mine, up.stderr).toHaveLength(1);
        expect(mine[0]).toContain(`set ${h.portVar} to a free port`);
      }
      expect(lines).toHaveLength(4);
      // Nothing half-started: the second clone made no data of its own.
      expect(existsSync(join(clone, '.data'))).toBe(false);
    } finally {
      for (const s of listeners) s.close();
    }
  });
});
