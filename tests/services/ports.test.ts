/**
 * A managed port held by something else stops `up` with one line
 * (PortTaken), except when the holder is one of our own daemons whose working
 * folder is gone: a service a deleted clone left running (a CI job killed at
 * its time limit, say). That one is stopped and the port taken over, so the
 * next clone does not find the port taken for good.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensurePortFree, PortTaken } from '../../scripts/services/ports.ts';
import { tcpOpen } from '../../scripts/services/proc.ts';
import { freePort } from '../support/private-services.ts';
import { until } from '../support/until.ts';

const children: ChildProcess[] = [];
const folders: string[] = [];

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const f of folders) rmSync(f, { recursive: true, force: true });
});

/** A process listening on a fresh port, started in a folder of its own. */
async function listener(kind: 'redis' | 'node'): Promise<{ child: ChildProcess; port: number; folder: string }> {
  const folder = mkdtempSync(join(tmpdir(), 'parley-ports-'));
  folders.push(folder);
  const port = await freePort();
  const [cmd, args] =
    kind === 'redis'
      ? ['redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', folder]]
      : [process.execPath, ['-e', `require('node:net').createServer().listen(${port}, '127.0.0.1')`]];
  const child = spawn(cmd, args, { cwd: folder, stdio: 'ignore' });
  children.push(child);
  await until(`${kind} listening on ${port}`, () => tcpOpen('127.0.0.1', port, 500), { timeoutMs: 20_000 });
  return { child, port, folder };
}

const exited = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;

describe('a managed port that is taken', () => {
  it('stops a redis-server whose folder was deleted, and the port is free', async () => {
    const { child, port, folder } = await listener('redis');
    rmSync(folder, { recursive: true, force: true });
    await ensurePortFree('redis', port, 'PARLEY_REDIS_PORT');
    expect(await tcpOpen('127.0.0.1', port, 500)).toBe(false);
    await until('the orphaned redis-server to exit', () => exited(child), { timeoutMs: 20_000 });
    expect(child.signalCode ?? child.exitCode).not.toBe(null);
  });

  it('leaves a redis-server whose folder is there alone, and refuses the port naming it', async () => {
    const { child, port, folder } = await listener('redis');
    const err = await ensurePortFree('redis', port, 'PARLEY_REDIS_PORT').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PortTaken);
    expect((err as PortTaken).message).toContain(`port ${port} is taken by redis-server (pid ${child.pid}, in ${folder})`);
    expect(exited(child)).toBe(false);
    expect(await tcpOpen('127.0.0.1', port, 500)).toBe(true);
  });

  it('never stops a process that is not one of our daemons, even if its folder is gone', async () => {
    const { child, port, folder } = await listener('node');
    rmSync(folder, { recursive: true, force: true });
    await expect(ensurePortFree('redis', port, 'PARLEY_REDIS_PORT')).rejects.toBeInstanceOf(PortTaken);
    expect(exited(child)).toBe(false);
  });
});
