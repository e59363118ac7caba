/**
 * The services lock (scripts/services/lock.ts): one services command at a
 * time per data folder. A second waits for the first, across processes; a
 * lock left by a dead process is taken over at once.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { withLock } from '../../scripts/services/lock.ts';

const dir = mkdtempSync(join(tmpdir(), 'parley-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the services lock', () => {
  it('runs two holders one after the other, and removes the file after each', async () => {
    const path = join(dir, 'a', 'services.lock');
    const events: string[] = [];
    const waited: number[] = [];
    const holder = (name: string, ms: number) =>
      withLock(
        path,
        async () => {
          events.push(`${name} in`);
          expect(readFileSync(path, 'utf8')).toBe(String(process.pid));
          await new Promise((r) => setTimeout(r, ms));
          events.push(`${name} out`);
        },
        { pollMs: 20, onWait: (pid) => waited.push(pid) },
      );
    await Promise.all([holder('first', 200), new Promise((r) => setTimeout(r, 20)).then(() => holder('second', 10))]);
    expect(events).toEqual(['first in', 'first out', 'second in', 'second out']);
    expect(waited).toEqual([process.pid]);
    expect(existsSync(path)).toBe(false);
    // The folder made for the lock went with it, as nothing else was put there.
    expect(existsSync(join(dir, 'a'))).toBe(false);
  });

  it('keeps the folder it made when the command put something in it', async () => {
    const path = join(dir, 'k', 'services.lock');
    await withLock(path, async () => writeFileSync(join(dir, 'k', 'data'), 'x'));
    expect(existsSync(path)).toBe(false);
    expect(readFileSync(join(dir, 'k', 'data'), 'utf8')).toBe('x');
  });

  it('waits for a holder in another process, naming its pid', async () => {
    const path = join(dir, 'b', 'services.lock');
    const script = `import { withLock } from ${JSON.stringify(join(process.cwd(), 'scripts/services/lock.ts'))};
      await withLock(${JSON.stringify(path)}, async () => { console.log('held'); await new Promise((r) => setTimeout(r, 800)); console.log('out ' + Date.now()); });`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise<void>((resolve) => child.stdout!.on('data', () => out.includes('held') && resolve()));
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    const waited: number[] = [];
    const enteredAt = await withLock(path, async () => Date.now(), { pollMs: 20, onWait: (pid) => waited.push(pid) });
    await exited;
    expect(waited).toEqual([child.pid]);
    // Entered only after the other process left its critical section.
    expect(enteredAt).toBeGreaterThanOrEqual(Number(/out (\d+)/.exec(out)![1]));
  });

  it('takes over a lock whose holder died', async () => {
    const path = join(dir, 'c', 'services.lock');
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    mkdirSync(join(dir, 'c'), { recursive: true });
    writeFileSync(path, String(dead));
    const waited: number[] = [];
    expect(await withLock(path, async () => 'ran', { pollMs: 20, onWait: (pid) => waited.push(pid) })).toBe('ran');
    expect(waited).toEqual([]);
    expect(existsSync(path)).toBe(false);
    // A folder it did not make stays.
    expect(existsSync(join(dir, 'c'))).toBe(true);
  });
});
