/**
 * What the machine really gives this process, as opposed to what it lists. In a container /proc and
 * os.cpus() show the host's CPUs while a quota (docker --cpus, a Kubernetes limit) or a cpuset holds
 * the process to fewer; sizing thread pools from the listed count oversubscribes them.
 */
import { existsSync, readFileSync } from 'node:fs';
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
