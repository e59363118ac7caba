/**
 * A process whose configured port is taken (a second worker on one machine
 * with the default ops port, another clone's API) stops with one line that
 * names the variable to set, and exit code 1: no unhandled 'error' event, no
 * stack trace.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/private-services.ts';

const held: Server[] = [];
afterAll(() => {
  for (const s of held) s.close();
});

async function holdPort(host: string): Promise<number> {
  const port = await freePort();
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(port, host, resolve));
  held.push(s);
  return port;
}

function run(entry: string, env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', entry], {
      env: { ...process.env, LOG_LEVEL: 'silent', PARLEY_KEY_PREFIX: `sf${Date.now().toString(36)}`, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe('a process whose port is taken', () => {
  it('the workers: one line naming PARLEY_WORKER_PORT, exit 1', async () => {
    const port = await holdPort('127.0.0.1');
    const r = await run('workers/main.ts', { PARLEY_WORKER_PORT: String(port), PARLEY_WORKER_HOST: '127.0.0.1' });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr.trim()).toBe(
      `workers: the workers' ops server: 127.0.0.1:${port} is already in use (another process on this machine?); set PARLEY_WORKER_PORT to a free port, or 0 for any free one`,
    );
  });

  it('the API: one line naming PORT, exit 1', async () => {
    const port = await holdPort('0.0.0.0');
    const r = await run('api/main.ts', { PORT: String(port) });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr.trim()).toBe(
      `api: the API: 0.0.0.0:${port} is already in use (another process on this machine?); set PORT to a free port, or 0 for any free one`,
    );
  });
});
