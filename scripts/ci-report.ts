/**
 * The end of a CI run, short enough to survive in the tail of its log: the machine the run had
 * (CPUs listed and usable, CPU time lost to steal, memory, disk), how long each phase took, how
 * the managed Ollama was built and how fast it answered, the slowest test files, and every failed
 * test with the first line of its error. `.ci/run` prints this just before its final
 * "N passed, N failed" line, so a run that failed on a machine nobody can log into still says why.
 *
 *   npx tsx scripts/ci-report.ts <vitest json> <ci log folder>
 *
 * The log folder holds what `.ci/run` recorded as it went: `stat.start` (/proc/stat's cpu line at
 * the start), `disk.start` (free bytes then) and `phases` (one "name seconds" line per phase).
 */
import { existsSync, readdirSync, readFileSync, statfsSync } from 'node:fs';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { usableCpus } from '../platform/host.ts';
import { describeSamples, type SpeedCheck } from './services/ollama.ts';
import { settings, versions } from './services/settings.ts';

interface Assertion {
  title: string;
  status: string;
  duration?: number | null;
  failureMessages?: string[];
}
interface Suite {
  name: string;
  status: string;
  message?: string;
  startTime?: number;
  endTime?: number;
  assertionResults: Assertion[];
}

const [resultsFile = '.ci-results.json', logDir = '.ci-logs'] = process.argv.slice(2);
const read = (f: string): string | undefined => (existsSync(f) ? readFileSync(f, 'utf8') : undefined);
const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

function cpuTimes(line: string | undefined): number[] | undefined {
  const f = line?.trim().split(/\s+/);
  return f && f[0] === 'cpu' ? f.slice(1).map(Number) : undefined;
}

/** Where the CPU time went between the run's start and now (user, system, idle, iowait, steal). */
function cpuShares(): string {
  const start = cpuTimes(read(join(logDir, 'stat.start')));
  const now = cpuTimes(read('/proc/stat')?.split('\n')[0]);
  if (!start || !now) return 'cpu time: not recorded';
  const d = now.map((v, i) => v - (start[i] ?? 0));
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = d;
  const total = d.slice(0, 8).reduce((a, b) => a + b, 0) || 1;
  const pct = (v: number) => `${((100 * v) / total).toFixed(0)}%`;
  return `cpu time over the run: user ${pct(user + nice)}, system ${pct(system + irq + softirq)}, idle ${pct(idle)}, iowait ${pct(iowait)}, steal ${pct(steal)}`;
}

function machine(): string[] {
  const cpuinfo = read('/proc/cpuinfo') ?? '';
  const listed = (cpuinfo.match(/^processor\s*:/gm) ?? []).length || cpus().length;
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown';
  const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? '').split(/\s+/));
  const simd = ['avx', 'avx2', 'fma', 'f16c', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'amx_tile'].filter((f) => flags.has(f));
  const diskNow = (() => {
    try {
      const s = statfsSync(settings.repoRoot);
      return s.bavail * s.bsize;
    } catch {
      return undefined;
    }
  })();
  const diskStart = Number((read(join(logDir, 'disk.start')) ?? '').trim() || NaN);
  const disk = [
    Number.isFinite(diskStart) ? `${gib(diskStart)} free at the start` : undefined,
    diskNow !== undefined ? `${gib(diskNow)} at the end` : undefined,
  ].filter(Boolean);
  return [
    `machine: ${listed} CPUs listed, ${usableCpus()} usable; ${model}; ${simd.join(' ') || 'no AVX'}; memory ${gib(totalmem())} (${gib(freemem())} free now); disk ${disk.join(', ') || 'unknown'}`,
    `${cpuShares()}; load average now ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  ];
}

function phases(): string[] {
  const lines = (read(join(logDir, 'phases')) ?? '').trim().split('\n').filter(Boolean);
  return lines.length ? [`phases: ${lines.map((l) => l.replace(/^(\S+) (\d+)$/, '$1 $2 s')).join(' · ')}`] : [];
}

/** The speed check `services up` recorded, if any. */
function speedRecord(): Partial<SpeedCheck> | undefined {
  const speed = read(settings.speedFile);
  return speed ? (JSON.parse(speed) as Partial<SpeedCheck>) : undefined;
}

function speedCheck(): string[] {
  const check = speedRecord();
  if (!check) return ['ollama speed check: none recorded'];
  const where = check.binary?.startsWith(settings.cacheDir) ? check.binary.slice(settings.cacheDir.length + 1) : check.binary;
  return [
    `ollama speed check: ${where}, ${check.usable} usable CPUs; ${describeSamples(check.samples ?? [])}; kept ${check.chosen} threads${check.pinned ? ' (pinned)' : ''}`,
  ];
}

/** Every Ollama build in the cache (build.json beside each binary), the one the speed check ran marked, and each failed one. */
function ollamaBuilds(): string[] {
  const out: string[] = [];
  const root = join(settings.cacheDir, 'ollama', `v${versions.ollama}`);
  let inUse: string | undefined;
  try {
    inUse = speedRecord()?.binary;
  } catch {
    /* the speed check's own section says so */
  }
  for (const entry of existsSync(root) ? readdirSync(root) : []) {
    if (entry.endsWith('.failed.json')) {
      const j = JSON.parse(read(join(root, entry)) ?? '{}') as { cflags?: string; error?: string };
      // The compiler's or linker's own words, not the command line that the message starts with.
      const lines = (j.error ?? '').split('\n');
      const why = lines.filter((l) => /error|undefined reference|fatal/i.test(l) && l.length < 400).slice(0, 3);
      out.push(`ollama build ${entry.replace(/\.failed\.json$/, '')} FAILED (${j.cflags}): ${clip((why.length ? why : lines.slice(-3)).join(' | '), 400)}`);
      continue;
    }
    const b = read(join(root, entry, 'bin', 'build.json'));
    if (!b) continue;
    const j = JSON.parse(b) as { flavour: string; cflags: string; seconds?: number; builtAt?: string };
    const used = inUse?.startsWith(join(root, entry, 'bin')) ? ' (in use)' : '';
    out.push(`ollama build ${entry}${used}: ${j.flavour} (${j.cflags}), ${j.seconds ?? '?'} s, ${j.builtAt ?? ''}`);
  }
  return out.length ? out : ['ollama builds: none in the cache'];
}

function tests(): string[] {
  const raw = read(resultsFile);
  if (!raw) return [`tests: no results file (${resultsFile})`];
  const r = JSON.parse(raw) as { testResults?: Suite[] };
  for (const suite of r.testResults ?? []) suite.assertionResults ??= [];
  const suites = r.testResults ?? [];
  const name = (s: Suite) => (s.name.includes('/tests/') ? s.name.slice(s.name.lastIndexOf('/tests/') + 1) : s.name);
  const out: string[] = [];
  const slow = [...suites]
    .map((s) => ({ f: name(s), secs: ((s.endTime ?? 0) - (s.startTime ?? 0)) / 1000 }))
    .sort((a, b) => b.secs - a.secs)
    .slice(0, 8);
  out.push(`slowest files: ${slow.map((s) => `${s.f} ${s.secs.toFixed(0)} s`).join(' · ')}`);
  const failures: string[] = [];
  let files = 0;
  for (const s of suites) {
    const failed = s.assertionResults.filter((a) => a.status === 'failed');
    const skipped = s.assertionResults.filter((a) => a.status === 'pending' || a.status === 'skipped' || a.status === 'todo').length;
    if (s.status !== 'failed' && !failed.length && !skipped) continue;
    files++;
    const head = `${name(s)}: ${failed.length} failed${skipped ? `, ${skipped} skipped` : ''}`;
    if (!failed.length) {
      failures.push(`${head}; suite: ${clip(firstLine(s.message ?? 'failed without a test failing'), 220)}`);
      continue;
    }
    failures.push(head);
    for (const a of failed.slice(0, 6))
      failures.push(`  × ${clip(a.title, 70)} (${((a.duration ?? 0) / 1000).toFixed(1)} s): ${clip(firstLine(a.failureMessages?.[0] ?? ''), 150)}`);
    if (failed.length > 6) failures.push(`  … and ${failed.length - 6} more`);
  }
  out.push(files ? `failed or skipped (${files} files):` : 'failed or skipped: none');
  // The tail of the log is what survives: bound this part.
  return [...out, ...failures.slice(0, 90)];
}

function firstLine(s: string): string {
  return (
    s
      .split('\n')
      .map((l) => l.trim())
      .find(Boolean) ?? ''
  );
}

/** One section's lines, or one line saying why it could not be read: a bad file must not blank the rest. */
function section(name: string, lines: () => string[]): string[] {
  try {
    return lines();
  } catch (err) {
    return [`${name}: unreadable (${clip(err instanceof Error ? err.message : String(err), 200)})`];
  }
}

console.log(
  [
    '── CI report ──',
    ...section('machine', machine),
    ...section('phases', phases),
    ...section('ollama builds', ollamaBuilds),
    ...section('ollama speed check', speedCheck),
    ...section('tests', tests),
  ].join('\n'),
);
