/**
 * Port ownership. A managed service's port may already be held by something
 * else: most often the services of another clone on the same machine. Then
 * we must not start a second copy into a port we cannot bind, and must never
 * talk to the other clone's server as if it were ours (its data is not ours).
 * We stop at once with one line naming the port, the process holding it and
 * the variable that moves ours.
 *
 * One holder is taken over instead: one of our own services (redis-server,
 * ollama, ferretdb) whose working folder is gone, left running by a clone
 * deleted without `down` (a CI job killed at its time limit, say). Its data
 * is gone with its folder, nobody can reach it through a clone any more, and
 * a new clone at any path would otherwise find the port taken for good. It
 * gets SIGTERM, then SIGKILL after 15 s, and the port is ours.
 */
import { readlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tcpOpen } from './proc.ts';

/** A port held by someone else: one line, no stack. */
export class PortTaken extends Error {
  constructor(
    readonly service: string,
    readonly port: number,
    readonly holder: string,
    readonly portVar: string,
    readonly urlVar: string,
  ) {
    super(`${service}: port ${port} is taken by ${holder}; set ${portVar} to a free port for this clone (or ${urlVar} to use that server as an external one)`);
  }
}

interface Holder {
  name: string;
  pid: number;
  /** Its working folder as /proc shows it (` (deleted)` at the end once removed); undefined if unreadable. */
  cwd?: string;
}

/** Who listens on a TCP port, from `ss`; best effort. */
function holderOf(port: number): Holder | undefined {
  const r = spawnSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' });
  const m = /users:\(\("([^"]+)",pid=(\d+)/.exec(r.stdout ?? '');
  if (!m) return undefined;
  let cwd: string | undefined;
  try {
    cwd = readlinkSync(`/proc/${m[2]}/cwd`);
  } catch {
    /* not ours to read */
  }
  return { name: m[1]!, pid: Number(m[2]), cwd };
}

/** Who listens on a TCP port, as `name (pid N, in /cwd)`; best effort. */
export function portHolder(port: number): string {
  const h = holderOf(port);
  return h ? `${h.name} (pid ${h.pid}${h.cwd ? `, in ${h.cwd}` : ''})` : 'another process';
}

/** The services `up` starts as daemons, by the name `ss` shows for them. */
const ourDaemons = new Set(['redis-server', 'ollama', 'ferretdb']);

/** One of our daemons whose working folder was deleted: a service of a clone that is gone. */
export function isOrphanedService(h: Holder): boolean {
  return ourDaemons.has(h.name) && h.cwd !== undefined && h.cwd.endsWith(' (deleted)');
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function stopOrphan(service: string, h: Holder): Promise<void> {
  process.stderr.write(`[services] ${service}: stopping ${h.name} (pid ${h.pid}), left running by a clone whose folder is gone (${h.cwd})\n`);
  const deadline = Date.now() + 15_000;
  try {
    process.kill(h.pid, 'SIGTERM');
    while (alive(h.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (alive(h.pid)) process.kill(h.pid, 'SIGKILL');
  } catch {
    /* gone already */
  }
  for (let i = 0; i < 50 && alive(h.pid); i++) await new Promise((r) => setTimeout(r, 100));
}

const urlVars: Record<string, string> = { redis: 'REDIS_URL', postgres: 'DATABASE_URL', ollama: 'OLLAMA_HOST', mongo: 'MONGODB_URL' };

/** Throws PortTaken when something listens on 127.0.0.1:port, after stopping an orphaned service of ours that held it. */
export async function ensurePortFree(service: string, port: number, portVar: string): Promise<void> {
  if (!(await tcpOpen('127.0.0.1', port, 500))) return;
  const h = holderOf(port);
  if (h && isOrphanedService(h)) {
    await stopOrphan(service, h);
    if (!(await tcpOpen('127.0.0.1', port, 500))) return;
  }
  throw new PortTaken(service, port, portHolder(port), portVar, urlVars[service] ?? 'its URL variable');
}
