/**
 * Private Redis and Postgres instances for the suites that kill, stop and
 * hang them, so the shared services (and every other suite running at the
 * same time) are never touched. Redis is a plain `redis-server` child with
 * AOF on a free port; Postgres is brought up by the project's own service
 * manager with its own data folder and port (so it is exactly what users run).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { until } from './until.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** A loopback port nothing listens on right now (the kernel's pick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface PrivateRedis {
  url: string;
  /** SIGKILL: gone, as after a crash. */
  kill(): Promise<void>;
  /** Starts it again on the same port and data folder (the AOF brings back what was fsynced). */
  start(): Promise<void>;
  /** SIGSTOP / SIGCONT: hung, then back. */
  hang(): void;
  unhang(): void;
  close(): Promise<void>;
}

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const ping = () =>
    new Promise<boolean>((resolve) => {
      const r = spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8', timeout: 1000 });
      resolve(r.stdout.trim() === 'PONG');
    });
  const start = async () => {
    child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'everysec',
        '--save',
        '',
        '--maxmemory-policy',
        'noeviction',
      ],
      { stdio: 'ignore' },
    );
    await until('private redis', () => ping().catch(() => false), { everyMs: 100 });
  };
  await start();
  const exited = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));
  return {
    url: `redis://127.0.0.1:${port}`,
    async kill() {
      if (!child) return;
      child.kill('SIGKILL');
      await exited(child);
      child = undefined;
    },
    start,
    hang: () => child?.kill('SIGSTOP'),
    unhang: () => child?.kill('SIGCONT'),
    async close() {
      if (child) {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
        await exited(child);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface PrivatePostgres {
  /** The app database, migrated by the caller. */
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

function manage(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/services/main.ts', ...args], {
      cwd: repoRoot,
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`services ${args.join(' ')} exited ${code}: ${err}`))));
  });
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const dataDir = mkdtempSync(join(tmpdir(), 'parley-pg-'));
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, PARLEY_DATA_DIR: dataDir, PARLEY_PG_PORT: String(port) };
  for (const n of ['REDIS_URL', 'DATABASE_URL', 'OLLAMA_HOST', 'MONGODB_URL', 'PARLEY_TEST_DATABASE_URL']) delete env[n];
  await manage(['up', 'postgres'], env);
  const url = `postgres://parley@127.0.0.1:${port}/parley`;
  const answers = async () => {
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    try {
      await c.connect();
      await c.query('select 1');
      return true;
    } finally {
      await c.end().catch(() => {});
    }
  };
  return {
    url,
    stop: () => manage(['down', 'postgres'], env),
    async start() {
      await manage(['up', 'postgres'], env);
      await until('private postgres', () => answers().catch(() => false), { everyMs: 100 });
    },
    async close() {
      await manage(['purge', 'postgres'], env).catch(() => {});
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
