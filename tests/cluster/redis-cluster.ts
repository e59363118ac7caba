/**
 * A throwaway 3-node Redis Cluster on this machine: three `redis-server`
 * processes in cluster mode (masters only, no persistence) on free loopback
 * ports, their files in a temp folder, joined with `redis-cli --cluster create`.
 * `stop()` kills them and removes the folder.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from '../support/until.ts';

export interface RedisCluster {
  ports: number[];
  /** `redis+cluster://127.0.0.1:<p1>,…`, the REDIS_URL form platform/redis.ts reads. */
  url: string;
  stop(): Promise<void>;
}

const free = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

/** Three ports p whose cluster bus ports (p + 10000) are free too. */
async function freePorts(n: number): Promise<number[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 9_000);
    const ports = Array.from({ length: n }, (_, i) => base + i);
    const ok = await Promise.all(ports.flatMap((p) => [free(p), free(p + 10_000)]));
    if (ok.every(Boolean)) return ports;
  }
  throw new Error('no free ports for a Redis Cluster');
}

const cli = (port: number, ...args: string[]) => spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' });

export async function startRedisCluster(): Promise<RedisCluster> {
  if (spawnSync('redis-server', ['--version']).status !== 0)
    throw new Error('redis-server is not installed (npm run services -- up installs it as root, or apt-get install redis-server)');
  const dir = mkdtempSync(join(tmpdir(), 'parley-redis-cluster-'));
  const ports = await freePorts(3);
  const children: ChildProcess[] = ports.map((port) =>
    spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--cluster-node-timeout',
        '5000',
        '--save',
        '',
        '--appendonly',
        'no',
        '--maxmemory-policy',
        'noeviction',
        '--logfile',
        `redis-${port}.log`,
      ],
      { stdio: 'ignore' },
    ),
  );
  const stop = async () => {
    await Promise.all(
      children.map((c) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode ? r() : (c.once('exit', () => r()), c.kill('SIGKILL'))))),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await until('every node answering PING', () => ports.every((p) => cli(p, 'ping').stdout.trim() === 'PONG'));
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], {
      encoding: 'utf8',
    });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed:\n${create.stdout}\n${create.stderr}`);
    await until('cluster_state:ok on every node', () => ports.every((p) => cli(p, 'cluster', 'info').stdout.includes('cluster_state:ok')));
  } catch (err) {
    await stop();
    throw err;
  }
  return { ports, url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`, stop };
}
