/** Process and network helpers for the service manager. */
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { settings } from './settings.ts';

/** A problem the user can fix: `fix` says how. */
export class ServiceProblem extends Error {
  constructor(
    readonly service: string,
    readonly what: string,
    readonly fix: string,
  ) {
    super(`${service}: ${what}\n  fix: ${fix}`);
  }
}

export function log(service: string, message: string): void {
  process.stderr.write(`[services] ${service.padEnd(8)} ${message}\n`);
}

export function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}:\n${out}`);
  }
  return String(r.stdout ?? '');
}

/**
 * Runs a long command with its output appended to a log file; rejects with the
 * log's tail. With `progress`, prints a line at least every 20 s with the
 * elapsed time and an estimate, so a cold build never looks hung.
 */
export function runLogged(
  cmd: string,
  args: string[],
  logFile: string,
  env: NodeJS.ProcessEnv = process.env,
  cwd?: string,
  progress?: { service: string; expectedSeconds: number },
): Promise<void> {
  mkdirSync(dirname(logFile), { recursive: true });
  const fd = openSync(logFile, 'a');
  const t0 = Date.now();
  const timer = progress
    ? setInterval(() => {
        const s = Math.round((Date.now() - t0) / 1000);
        const left = progress.expectedSeconds - s;
        const eta = left > 0 ? `about ${formatSeconds(left)} left` : 'taking longer than usual, still working';
        log(progress.service, `still building: ${formatSeconds(s)} elapsed, ${eta}`);
      }, 20_000)
    : undefined;
  return new Promise((resolveP, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], env, cwd });
    child.on('error', (err) => {
      clearInterval(timer);
      reject(err);
    });
    child.on('exit', (code) => {
      clearInterval(timer);
      if (code === 0) return resolveP();
      const tail = readFileSync(logFile, 'utf8').trim().split('\n').slice(-20).join('\n');
      reject(new Error(`${cmd} ${args.join(' ')} exited ${code}; last lines of ${logFile}:\n${tail}`));
    });
  });
}

function formatSeconds(s: number): string {
  return s >= 90 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

let aptUpdated = false;
/** Installs Debian packages when we are root; otherwise explains what to install. */
export function ensureDebianPackages(service: string, packages: string[], present: () => boolean): void {
  if (present()) return;
  if (!settings.isRoot || !which('apt-get')) {
    throw new ServiceProblem(service, `missing Debian package(s) ${packages.join(', ')}`, `sudo apt-get install -y ${packages.join(' ')}`);
  }
  log(service, `installing ${packages.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) {
    run('apt-get', ['update', '-qq'], { env });
    aptUpdated = true;
  }
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { env });
  if (!present())
    throw new ServiceProblem(service, `apt-get installed ${packages.join(', ')} but the binaries are still missing`, 'check the apt output above');
}

/** Starts a long-running daemon detached from us, logging to a file, and records its pid. */
export function spawnDaemon(cmd: string, args: string[], opts: { logFile: string; pidFile: string; env?: NodeJS.ProcessEnv; cwd?: string }): number {
  mkdirSync(dirname(opts.logFile), { recursive: true });
  const fd = openSync(opts.logFile, 'a');
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], env: opts.env ?? process.env, cwd: opts.cwd });
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
  writeFileSync(opts.pidFile, String(child.pid));
  return child.pid;
}

export function readPid(pidFile: string): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').trim().split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function stopPid(pidFile: string, timeoutMs = 15_000): Promise<boolean> {
  const pid = readPid(pidFile);
  if (!alive(pid)) {
    rmSync(pidFile, { force: true });
    return false;
  }
  process.kill(pid!, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (alive(pid) && Date.now() < deadline) await sleep(100);
  if (alive(pid)) process.kill(pid!, 'SIGKILL');
  rmSync(pidFile, { force: true });
  return true;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function tcpOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolveP) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolveP(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Polls `probe` until it resolves true, or fails with the daemon's log tail. */
export async function waitUntil(service: string, probe: () => Promise<boolean>, timeoutMs: number, logFile?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await sleep(150);
  }
  const tail = logFile && existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').slice(-15).join('\n') : '';
  throw new ServiceProblem(
    service,
    `did not become ready within ${timeoutMs / 1000}s${tail ? `; last log lines:\n${tail}` : ''}`,
    logFile ? `read ${logFile}` : 'check the service',
  );
}

export function hostPort(url: string, defaultPort: number): { host: string; port: number } {
  const u = new URL(url.includes('://') ? url : `http://${url}`);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port ? Number(u.port) : defaultPort };
}
