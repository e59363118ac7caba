/**
 * Thread pools and the managed Ollama are sized by usableCpus(): the CPUs this
 * process may run on, not those the machine lists. Held to one CPU by its
 * affinity mask, a process counts one.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { usableCpus } from '../../platform/host.ts';

function countUnder(cpuList: string): number {
  const r = spawnSync(
    'taskset',
    ['-c', cpuList, process.execPath, '--import', 'tsx', '-e', "import('./platform/host.ts').then((m) => console.log(m.usableCpus()))"],
    {
      encoding: 'utf8',
    },
  );
  expect(r.status, r.stderr).toBe(0);
  return Number(r.stdout.trim());
}

describe('usableCpus', () => {
  it('is at least 1 and never more than the affinity mask allows', () => {
    expect(usableCpus()).toBeGreaterThanOrEqual(1);
    expect(usableCpus()).toBeLessThanOrEqual(availableParallelism());
  });

  it('counts one CPU in a process held to one by taskset, whatever the machine lists', () => {
    expect(countUnder('0')).toBe(1);
  });
});
