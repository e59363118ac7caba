/**
 * The service manager (`npm run services -- ...`) as a newcomer runs it, in a
 * child process. `up` runs with the four service URLs removed, so it manages
 * its own instances: those are exactly the ones already running (same data
 * and cache folders, same ports), and it must leave them alone.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { serviceUrlNames } from './service-env.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const serviceNames = ['redis', 'postgres', 'mongo', 'ollama'];

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

function manage(command: 'up' | 'env' | 'status', opts: { keepUrls?: boolean } = {}): Promise<Outcome> {
  const env = { ...process.env };
  if (!opts.keepUrls) for (const name of serviceUrlNames) delete env[name];
  return new Promise((resolve, reject) => {
    const child = spawn('npx', ['tsx', 'scripts/services/main.ts', command], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('service manager', () => {
  it('up while everything runs exits 0 and reports each service as already running', async () => {
    const { code, stderr } = await manage('up');
    expect(code, stderr).toBe(0);
    for (const name of serviceNames) {
      // Every service, Postgres included, says `already running` when it started nothing.
      expect(stderr).toMatch(new RegExp(`^\\[services\\] ${name}\\s+already running\\b`, 'm'));
    }
    expect(stderr).not.toMatch(/\bstarted\b/);
  });

  it('env prints an export line for each of the seven variables', async () => {
    const { code, stdout, stderr } = await manage('env');
    expect(code, stderr).toBe(0);
    const exported = stdout
      .trim()
      .split('\n')
      .map((line) => /^export ([A-Z_]+)=(.+)$/.exec(line)?.slice(1));
    expect(exported.every((e) => e !== undefined)).toBe(true);
    expect(exported.map((e) => e![0]).sort()).toEqual(
      ['REDIS_URL', 'DATABASE_URL', 'PARLEY_TEST_DATABASE_URL', 'OLLAMA_HOST', 'PARLEY_CHAT_MODEL', 'PARLEY_EMBED_MODEL', 'MONGODB_URL'].sort(),
    );
  });

  it('status exits 0 and lists the four services', async () => {
    const { code, stdout, stderr } = await manage('status');
    expect(code, stderr).toBe(0);
    const listed = stdout
      .trim()
      .split('\n')
      .map((line) => /^(\S+)\s+(?:managed|external)\s+\S/.exec(line)?.[1]);
    expect(listed.sort()).toEqual([...serviceNames].sort());
  });

  it('after eval of its own env lines it still manages its own services (regression: it treated them as external)', async () => {
    // `npm test` runs with the URLs `services env` printed, as a user who followed the README has them.
    const { stdout: printed } = await manage('env');
    const exported = Object.fromEntries(
      printed
        .trim()
        .split('\n')
        .map((l) => /^export ([A-Z_]+)=(.+)$/.exec(l)!.slice(1) as [string, string]),
    );
    const saved = { ...process.env };
    Object.assign(process.env, exported);
    try {
      const { code, stdout, stderr } = await manage('status', { keepUrls: true });
      expect(code, stderr).toBe(0);
      const rows = stdout.trim().split('\n');
      expect(rows.filter((r) => /^\S+\s+managed\s/.test(r))).toHaveLength(4);
    } finally {
      process.env = saved;
    }
  });
});
