/**
 * Port ownership. A managed service's port may already be held by something
 * else: most often the services of another clone on the same machine. Then
 * we must not start a second copy into a port we cannot bind, and must never
 * talk to the other clone's server as if it were ours (its data is not ours).
 * We stop at once with one line naming the port, the process holding it and
 * the variable that moves ours.
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

/** Who listens on a TCP port, as `name (pid N, in /cwd)`, from `ss`; best effort. */
export function portHolder(port: number): string {
  const r = spawnSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' });
  const m = /users:\(\("([^"]+)",pid=(\d+)/.exec(r.stdout ?? '');
  if (!m) return 'another process';
  let where = '';
  try {
    where = `, in ${readlinkSync(`/proc/${m[2]}/cwd`)}`;
  } catch {
    /* not ours to read */
  }
  return `${m[1]} (pid ${m[2]}${where})`;
}

const urlVars: Record<string, string> = { redis: 'REDIS_URL', postgres: 'DATABASE_URL', ollama: 'OLLAMA_HOST', mongo: 'MONGODB_URL' };

/** Throws PortTaken when something listens on 127.0.0.1:port. */
export async function ensurePortFree(service: string, port: number, portVar: string): Promise<void> {
  if (await tcpOpen('127.0.0.1', port, 500)) throw new PortTaken(service, port, portHolder(port), portVar, urlVars[service] ?? 'its URL variable');
}
