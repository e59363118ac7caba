/**
 * The MongoDB-wire server: FerretDB v1 with its pure-Go SQLite backend, built
 * from source, data under the data folder, bound to 127.0.0.1.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { buildFerret } from './build.ts';
import { alive, readPid, spawnDaemon, stopPid, waitUntil, ServiceProblem } from './proc.ts';
import { ensurePortFree } from './ports.ts';
import { settings } from './settings.ts';
import type { Service } from './service.ts';

const dir = join(settings.dataDir, 'ferretdb');
const pidFile = join(dir, 'ferretdb.pid');
const logFile = join(dir, 'ferretdb.log');

function url(): string {
  return settings.external.mongo ?? `mongodb://127.0.0.1:${settings.ports.mongo}/parley`;
}

async function ping(): Promise<boolean> {
  const client = new MongoClient(url(), { serverSelectionTimeoutMS: 1000, connectTimeoutMS: 1000 });
  try {
    await client.db().command({ ping: 1 });
    return true;
  } catch {
    return false;
  } finally {
    await client.close().catch(() => {});
  }
}

export const ferretdb: Service = {
  name: 'mongo',
  env: () => ({ MONGODB_URL: url() }),
  external: () => settings.external.mongo !== undefined,
  async preflight() {
    if (settings.external.mongo || (alive(readPid(pidFile)) && (await ping()))) return;
    await ensurePortFree('mongo', settings.ports.mongo, 'PARLEY_MONGO_PORT');
  },
  async up() {
    if (settings.external.mongo) {
      if (!(await ping()))
        throw new ServiceProblem('mongo', `MONGODB_URL=${url()} is not reachable`, 'start that server, or unset MONGODB_URL to let Parley start FerretDB');
      return 'external, reachable';
    }
    if (alive(readPid(pidFile)) && (await ping())) return 'already running';
    await ensurePortFree('mongo', settings.ports.mongo, 'PARLEY_MONGO_PORT');
    const bin = await buildFerret();
    mkdirSync(join(dir, 'sqlite'), { recursive: true });
    mkdirSync(join(dir, 'state'), { recursive: true });
    spawnDaemon(
      bin,
      [
        '--handler=sqlite',
        `--sqlite-url=${pathToFileURL(join(dir, 'sqlite')).href}/`,
        `--state-dir=${join(dir, 'state')}`,
        `--listen-addr=127.0.0.1:${settings.ports.mongo}`,
        '--debug-addr=127.0.0.1:0',
        '--telemetry=disable',
        '--log-level=warn',
      ],
      { logFile, pidFile },
    );
    await waitUntil('mongo', ping, 30_000, logFile);
    return 'started';
  },
  async down() {
    if (settings.external.mongo) return 'external, left alone';
    return (await stopPid(pidFile)) ? 'stopped' : 'not running';
  },
  async purge() {
    if (settings.external.mongo) return 'external, left alone';
    rmSync(dir, { recursive: true, force: true });
    return `removed ${dir}`;
  },
  async status() {
    return (await ping()) ? 'reachable' : 'down';
  },
};
