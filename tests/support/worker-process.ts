/**
 * Worker processes as real children, for the suites that kill, stop and
 * resume them: each runs workers/main.ts with the stack's environment and
 * short lock settings, and resolves once it logs "workers ready".
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface WorkerChild {
  child: ChildProcess;
  /** Everything it logged so far (stdout and stderr). */
  output(): string;
  exited(): Promise<number | null>;
}

export function startWorkerProcess(env: NodeJS.ProcessEnv, extra: Record<string, string> = {}): Promise<WorkerChild> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
    env: { ...env, PARLEY_LOCK_MS: '2000', PARLEY_STALLED_INTERVAL_MS: '1000', PARLEY_SWEEP_INTERVAL_MS: '500', LOG_LEVEL: 'info', ...extra },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const handle: WorkerChild = {
    child,
    output: () => out,
    exited: () => new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code)))),
  };
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('workers ready')) resolve(handle);
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => reject(new Error(`worker exited early (${code}):\n${out}`)));
  });
}
