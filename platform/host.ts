/**
 * What the machine really gives this process, as opposed to what it lists. In a container /proc and
 * os.cpus() show the host's CPUs while a quota (docker --cpus, a Kubernetes limit) or a cpuset holds
 * the process to fewer; sizing thread pools from the listed count oversubscribes them. And the ports
 * it listens on: a taken one is one clear line for the operator (PortInUse, exitOnStartFailure).
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * The CPUs this process may use: the affinity mask (availableParallelism, which follows a cpuset)
 * bounded by the tightest CPU quota on its cgroup or any parent (cgroup v2's cpu.max, v1's
 * cpu.cfs_quota_us), rounded down. At least 1.
 */
export function usableCpus(): number {
  let cpus = availableParallelism();
  try {
    for (const quota of cpuQuotas()) cpus = Math.min(cpus, Math.max(1, Math.floor(quota)));
  } catch {
    /* no readable cgroup files: the affinity mask stands */
  }
  return cpus;
}

/** Each quota, in CPUs, from this process's cgroup up to the root. */
function cpuQuotas(): number[] {
  const quotas: number[] = [];
  const lines = readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n');
  for (const line of lines) {
    const [, controllers = '', path = '/'] = line.split(':');
    if (controllers === '') {
      // cgroup v2 (unified): cpu.max holds "<quota> <period>" or "max <period>".
      for (const dir of upFrom('/sys/fs/cgroup', path)) {
        const file = join(dir, 'cpu.max');
        if (!existsSync(file)) continue;
        const [quota, period] = readFileSync(file, 'utf8').trim().split(/\s+/);
        if (quota !== 'max' && Number(period) > 0) quotas.push(Number(quota) / Number(period));
      }
    } else if (controllers.split(',').includes('cpu')) {
      // cgroup v1: the controller's mount is named by its controllers ("cpu" or "cpu,cpuacct"), or linked as "cpu".
      const mount = [`/sys/fs/cgroup/${controllers}`, '/sys/fs/cgroup/cpu'].find((m) => existsSync(m));
      if (!mount) continue;
      for (const dir of upFrom(mount, path)) {
        const file = join(dir, 'cpu.cfs_quota_us');
        if (!existsSync(file)) continue;
        const quota = Number(readFileSync(file, 'utf8'));
        const period = Number(readFileSync(join(dir, 'cpu.cfs_period_us'), 'utf8'));
        if (quota > 0 && period > 0) quotas.push(quota / period);
      }
    }
  }
  return quotas;
}

/** `root/path`, then each parent up to `root`. In a container's own namespace the path is `/` and this is `root` alone. */
function upFrom(root: string, path: string): string[] {
  const dirs: string[] = [];
  let dir = join(root, path);
  while (dir.startsWith(root)) {
    dirs.push(dir);
    if (dir === root) break;
    dir = dirname(dir);
  }
  return dirs;
}

// ── Ports: the API's and the workers' ops server's ──────────────────────────
// A port another process holds (a second worker on the same machine, another clone's API) is one clear
// line naming the variable that moves it, not an unhandled 'error' event and a stack trace.

/** The configured port is taken. */
export class PortInUse extends Error {
  constructor(
    readonly what: string,
    readonly address: string,
    readonly portVar: string,
  ) {
    super(`${what}: ${address} is already in use (another process on this machine?); set ${portVar} to a free port, or 0 for any free one`);
    this.name = 'PortInUse';
  }
}

/** Resolves once `server` listens on host:port; rejects with PortInUse when the port is taken, else with the listen error. */
export function listen(server: Server, port: number, host: string, what: string, portVar: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE' ? new PortInUse(what, `${host}:${port}`, portVar) : err);
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
}

/**
 * For a process's entry point when its start fails: one line for a known configuration problem
 * (PortInUse), the stack for anything else; then exit 1.
 */
export function exitOnStartFailure(proc: string, err: unknown): never {
  process.stderr.write(
    err instanceof PortInUse ? `${proc}: ${err.message}\n` : `${proc}: could not start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
}
