/**
 * The report `.ci/run` prints before its final line (scripts/ci-report.ts): on a machine nobody can
 * log into, the tail of the log is all that is left, so it must name each failed test and its error.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { versions } from '../../scripts/services/settings.ts';

const temps: string[] = [];
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

function temp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'parley-ci-report-'));
  temps.push(dir);
  return dir;
}

/** Runs the report on these results, with its own data and cache folders (not the checkout's). */
function report(results: unknown, files: Record<string, string> = {}): string {
  const dir = temp();
  const data = join(dir, 'data');
  const cache = join(dir, 'cache');
  const all: Record<string, string> = {
    'logs/results.json': typeof results === 'string' ? results : JSON.stringify(results),
    'logs/phases': 'tests 42\n',
    'logs/stat.start': 'cpu  100 0 50 1000 5 0 0 2 0 0\n',
    ...files,
  };
  for (const [rel, text] of Object.entries(all)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
  return execFileSync('npx', ['tsx', 'scripts/ci-report.ts', join(dir, 'logs', 'results.json'), join(dir, 'logs')], {
    encoding: 'utf8',
    env: { ...process.env, PARLEY_DATA_DIR: data, PARLEY_CACHE_DIR: cache },
  });
}

describe('the CI report', () => {
  it('names every failed test with the first line of its error, a suite that failed to load, and skipped tests', () => {
    const out = report({
      testResults: [
        {
          name: '/somewhere/clone/tests/code/crash.test.ts',
          status: 'failed',
          startTime: 0,
          endTime: 120_000,
          assertionResults: [
            { title: 'resumes after kill -9', status: 'failed', duration: 120_000, failureMessages: ['Error: Test timed out in 120000ms.\n    at stack'] },
            { title: 'indexes', status: 'passed', duration: 10 },
            { title: 'later', status: 'skipped' },
          ],
        },
        { name: '/somewhere/clone/tests/a.test.ts', status: 'failed', message: 'Error: Cannot find module x\nstack', assertionResults: [] },
        { name: '/somewhere/clone/tests/ok.test.ts', status: 'passed', startTime: 0, endTime: 1000, assertionResults: [{ title: 'fine', status: 'passed' }] },
      ],
    });
    expect(out).toContain('tests/code/crash.test.ts: 1 failed, 1 skipped');
    expect(out).toMatch(/× resumes after kill -9 \(120\.0 s\): Error: Test timed out in 120000ms\./);
    expect(out).toContain('tests/a.test.ts: 0 failed; suite: Error: Cannot find module x');
    expect(out).not.toContain('tests/ok.test.ts: ');
    expect(out).toMatch(/slowest files: tests\/code\/crash\.test\.ts 120 s/);
    expect(out).toContain('phases: tests 42 s');
    expect(out).toMatch(/^machine: \d+ CPUs listed, \d+ usable/m);
    expect(out).toMatch(/cpu time over the run: user \d+%.*steal \d+%/);
  });

  it('says so when nothing failed, and when there is no results file', () => {
    expect(report({ testResults: [] })).toContain('failed or skipped: none');
    const dir = temp();
    const out = execFileSync('npx', ['tsx', 'scripts/ci-report.ts', join(dir, 'missing.json'), dir], { encoding: 'utf8' });
    expect(out).toContain('tests: no results file');
  });

  it("shows the speed check and the build in use, and a failed build with the compiler's words", () => {
    const bin = (key: string) => `cache/ollama/v${versions.ollama}/${key}/bin`;
    const out = report(
      { testResults: [] },
      {
        [`${bin('x86-64-v3')}/build.json`]: JSON.stringify({ flavour: 'x86-64-v3', cflags: '-O3 -march=x86-64-v3', seconds: 200 }),
        [`cache/ollama/v${versions.ollama}/native-abc.failed.json`]: JSON.stringify({
          cflags: '-O3 -march=native',
          error:
            "go install exited 1; last lines:\n/usr/bin/ld: ggml-cpu.cpp: undefined reference to `ggml_backend_amx_buffer_type()'\ncollect2: error: ld returned 1 exit status",
        }),
        'data/ollama/speed.json': 'PLACEHOLDER',
      },
    );
    expect(out).toMatch(/ollama build native-abc FAILED \(-O3 -march=native\): .*undefined reference to `ggml_backend_amx_buffer_type/);
    expect(out).toContain('ollama build x86-64-v3: x86-64-v3 (-O3 -march=x86-64-v3), 200 s');
    // An unreadable speed record costs its own line, not the report.
    expect(out).toMatch(/^ollama speed check: unreadable/m);
    expect(out).toContain('failed or skipped: none');
  });

  it('survives a results file cut off mid-write, and suites without a list of tests', () => {
    const cut = report('{"testResults": [{"name": "/x/tests/a.test.ts", "status": "fai');
    expect(cut).toMatch(/^tests: unreadable/m);
    expect(cut).toMatch(/^machine: /m);
    const bare = report({ testResults: [{ name: '/x/tests/b.test.ts', status: 'failed', message: 'Error: boom' }] });
    expect(bare).toContain('tests/b.test.ts: 0 failed; suite: Error: boom');
  });
});
