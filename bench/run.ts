/**
 * Runs every benchmark in sequence, each in its own process, and ends with
 * their verdict lines together.
 *
 *   npm run bench                       # all of them
 *   BENCH_ONLY=token-relay npm run bench
 *
 * Env: BENCH_ONLY (comma-separated names); BENCH_QUIET_WAIT_S (default 0):
 * before each script, wait up to this long for the machine to be quiet
 * (under a quarter of a core busy for 4 s), since a shared 2-core machine
 * skews everything; BENCH_PAIRS and every script's own variables pass
 * through. A script that fails (exit code, timeout) makes
 * this exit 1; a missed target does not (it is a finding, not a crash).
 * See docs/benchmarks.md for what each one measures and how to read it.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const all = [
  'ollama-build',
  'llm-path',
  'memory-soak',
  'redis-footprint',
  'submit-http',
  'queue-throughput',
  'dispatch-latency',
  'token-relay',
  'chunking',
  'login-timing',
];
const TIMEOUT_MS = 8 * 60_000;

function runOne(name: string): Promise<{ code: number | null; lines: string[]; ms: number }> {
  const file = fileURLToPath(new URL(`./${name}.ts`, import.meta.url));
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, file], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: string[] = [];
    let partial = '';
    child.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      partial += chunk.toString();
      const parts = partial.split('\n');
      partial = parts.pop()!;
      lines.push(...parts);
    });
    const timer = setTimeout(() => {
      console.error(`${name}: still running after ${TIMEOUT_MS / 60_000} min; stopping it`);
      child.kill('SIGTERM');
    }, TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (partial) lines.push(partial);
      resolve({ code, lines, ms: performance.now() - t0 });
    });
  });
}

function cpuTimes(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { busy: f.reduce((a, b) => a + b, 0) - f[3]! - (f[4] ?? 0), total: f.reduce((a, b) => a + b, 0) };
}

/** Waits until 4 s in a row keep under a quarter of one core busy, or `maxS` passes; returns the seconds waited. */
async function waitQuiet(maxS: number): Promise<number> {
  const t0 = Date.now();
  let quiet = 0;
  while (Date.now() - t0 < maxS * 1000) {
    const a = cpuTimes();
    await new Promise((r) => setTimeout(r, 1000));
    const b = cpuTimes();
    const cores = ((b.busy - a.busy) / Math.max(1, b.total - a.total)) * availableParallelism();
    quiet = cores < 0.25 ? quiet + 1 : 0;
    if (quiet >= 4) break;
  }
  return (Date.now() - t0) / 1000;
}

const quietWait = Number(process.env.BENCH_QUIET_WAIT_S ?? 0);
const only = process.env.BENCH_ONLY?.split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const names = all.filter((n) => (!only || only.includes(n)) && existsSync(fileURLToPath(new URL(`./${n}.ts`, import.meta.url))));
const summary: string[] = [];
let failed = false;
for (const name of names) {
  if (quietWait > 0) {
    const waited = await waitQuiet(quietWait);
    if (waited >= quietWait) console.log(`(the machine stayed busy for ${quietWait} s; running anyway)`);
  }
  console.log(`\n######## ${name} (load ${loadavg()[0]!.toFixed(2)}) ########`);
  const r = await runOne(name);
  const verdicts = r.lines.filter((l) => /\b(PASS|MISS|MET|NOT MET|info)\s*$/.test(l));
  summary.push(`${name} (${(r.ms / 1000).toFixed(0)} s${r.code === 0 ? '' : `, FAILED with exit code ${r.code}`})`, ...verdicts.map((l) => `  ${l.trim()}`));
  if (r.code !== 0) failed = true;
}
console.log(`\n######## summary ########\n${summary.join('\n')}`);
process.exitCode = failed ? 1 : 0;
