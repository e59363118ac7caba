/**
 * API and worker processes as real child processes (`node --import tsx
 * api/main.ts` / `workers/main.ts`, as the Dockerfile runs them), for the
 * suites that need several of them. Each process logs JSON lines at `info`;
 * they are kept, parsed, so a test can look for a log line, and the process
 * is ready once it said so ("api listening" with its port, "workers ready"
 * with its ops port).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

export interface ParleyProcess {
  kind: 'api' | 'workers';
  name: string;
  child: ChildProcess;
  /** The API's HTTP port, or the worker's ops port. */
  port: number;
  base: string;
  lines: LogLine[];
  /** Resolves with the first log line (already seen or to come) that matches. */
  waitForLog(match: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

const running = new Set<ParleyProcess>();

export async function startProcess(kind: 'api' | 'workers', env: NodeJS.ProcessEnv, name: string = kind): Promise<ParleyProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', kind === 'api' ? 'api/main.ts' : 'workers/main.ts'], {
    cwd: root,
    env: {
      ...env,
      PORT: '0',
      PARLEY_WORKER_PORT: '0',
      PARLEY_API_LOG_LEVEL: env.PARLEY_API_LOG_LEVEL ?? 'info',
      PARLEY_WORKER_LOG_LEVEL: env.PARLEY_WORKER_LOG_LEVEL ?? 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LogLine[] = [];
  const waiters = new Set<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  let rest = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    rest += d.toString();
    let i: number;
    while ((i = rest.indexOf('\n')) >= 0) {
      const text = rest.slice(0, i);
      rest = rest.slice(i + 1);
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        continue;
      }
      lines.push(line);
      for (const w of waiters) if (w.match(line)) (waiters.delete(w), w.resolve(line));
    }
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code, signal) => r(code ?? (signal ? -1 : null))));

  const waitForLog = (match: (l: LogLine) => boolean, timeoutMs = 30_000) =>
    new Promise<LogLine>((resolve, reject) => {
      const seen = lines.find(match);
      if (seen) return resolve(seen);
      const w = { match, resolve: (l: LogLine) => (clearTimeout(timer), resolve(l)) };
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(
          new Error(
            `${name}: no matching log line in ${timeoutMs} ms; last lines:\n${lines
              .slice(-10)
              .map((l) => JSON.stringify(l))
              .join('\n')}\n${stderr}`,
          ),
        );
      }, timeoutMs);
      waiters.add(w);
    });

  const ready = kind === 'api' ? 'api listening' : 'workers ready';
  const line = await Promise.race([
    waitForLog((l) => l.msg === ready, 60_000),
    exited.then((code) => {
      throw new Error(`${name} exited early (${code}):\n${stderr}\n${lines.map((l) => JSON.stringify(l)).join('\n')}`);
    }),
  ]);
  const port = Number(kind === 'api' ? line.port : line.opsPort);
  const proc: ParleyProcess = {
    kind,
    name,
    child,
    port,
    base: `http://127.0.0.1:${port}`,
    lines,
    waitForLog,
    exited,
    async kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  running.add(proc);
  void exited.then(() => running.delete(proc));
  return proc;
}

/** SIGKILLs every process still running (for afterAll / afterEach). */
export async function killAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.kill('SIGKILL')));
}
