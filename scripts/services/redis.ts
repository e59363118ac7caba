/**
 * Redis from Debian's redis-server: AOF on, fsync every second. That is the
 * durability Parley claims for queued jobs: at most about one second of
 * acknowledged writes can be lost on a machine crash.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { ensureDebianPackages, hostPort, readPid, alive, run, stopPid, waitUntil, which, ServiceProblem } from './proc.ts';
import { ensurePortFree } from './ports.ts';
import { settings } from './settings.ts';
import type { Service } from './service.ts';

const dir = join(settings.dataDir, 'redis');
const pidFile = join(dir, 'redis.pid');
const logFile = join(dir, 'redis.log');

function url(): string {
  return settings.external.redis ?? `redis://127.0.0.1:${settings.ports.redis}`;
}

/** Sends one inline PING and expects +PONG (or -NOAUTH, which still proves a live Redis). */
function ping(): Promise<boolean> {
  // A Redis Cluster URL (redis+cluster://a:1,b:2, see platform/redis.ts) is checked at its first seed node.
  const seed = url()
    .replace(/^(rediss?)\+cluster:\/\//, '$1://')
    .split(',')[0]!;
  const { host, port } = hostPort(seed, 6379);
  return new Promise((resolveP) => {
    const s = connect({ host, port });
    let buf = '';
    s.setTimeout(1000, () => (s.destroy(), resolveP(false)));
    s.once('error', () => resolveP(false));
    s.once('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) {
        s.destroy();
        resolveP(buf.startsWith('+PONG') || buf.startsWith('-NOAUTH'));
      }
    });
  });
}

export const redis: Service = {
  name: 'redis',
  env: () => ({ REDIS_URL: url() }),
  external: () => settings.external.redis !== undefined,
  async preflight() {
    if (settings.external.redis || (alive(readPid(pidFile)) && (await ping()))) return;
    await ensurePortFree('redis', settings.ports.redis, 'PARLEY_REDIS_PORT');
  },
  async up() {
    if (settings.external.redis) {
      if (!(await ping()))
        throw new ServiceProblem('redis', `REDIS_URL=${url()} is not reachable`, 'start that Redis, or unset REDIS_URL to let Parley start its own');
      return 'external, reachable';
    }
    if (alive(readPid(pidFile)) && (await ping())) return 'already running';
    await ensurePortFree('redis', settings.ports.redis, 'PARLEY_REDIS_PORT');
    ensureDebianPackages('redis', ['redis-server'], () => which('redis-server') !== undefined);
    mkdirSync(dir, { recursive: true });
    run('redis-server', [
      '--bind',
      '127.0.0.1',
      '--port',
      String(settings.ports.redis),
      '--protected-mode',
      'yes',
      '--dir',
      dir,
      '--pidfile',
      pidFile,
      '--logfile',
      logFile,
      '--daemonize',
      'yes',
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--save',
      '',
      '--maxmemory-policy',
      'noeviction',
      // Redis 7 preallocates each stream node at this size: 4 KB by default, for a job stream that
      // often holds a few hundred bytes. 1 KB cuts a finished job's footprint by more than half.
      '--stream-node-max-bytes',
      '1024',
    ]);
    await waitUntil('redis', ping, 15_000, logFile);
    return 'started';
  },
  async down() {
    if (settings.external.redis) return 'external, left alone';
    return (await stopPid(pidFile)) ? 'stopped' : 'not running';
  },
  async purge() {
    if (settings.external.redis) return 'external, left alone';
    rmSync(dir, { recursive: true, force: true });
    return `removed ${dir}`;
  },
  async status() {
    return (await ping()) ? 'reachable' : 'down';
  },
};
