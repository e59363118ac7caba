/**
 * One service command at a time per data folder: two `npm run services -- up`
 * started together (two terminals in a fresh clone, `npm start` beside
 * `npm test`) would otherwise both build Ollama, both initialise Postgres's
 * cluster and race for its ports. The lock is a file holding its owner's pid,
 * created exclusively; a second command waits for it, and one whose owner has
 * died (a killed `up`) is taken over.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmdirSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, owned by someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The lock's holder, or undefined when the file is missing or unreadable. */
function holder(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs `fn` holding the lock at `path`. While another live process holds it,
 * waits (calling `onWait` once with its pid), polling every `pollMs`; a lock
 * whose holder is gone is removed and taken.
 */
export async function withLock<T>(path: string, fn: () => Promise<T>, opts: { onWait?: (pid: number) => void; pollMs?: number } = {}): Promise<T> {
  // The folders made for the lock go with it when nothing else was put in them (a refused `up` leaves no `.data`).
  let made = mkdirSync(dirname(path), { recursive: true });
  let told = false;
  for (;;) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        // The previous holder removed the folder it had made: make it again.
        made = mkdirSync(dirname(path), { recursive: true }) ?? made;
        continue;
      }
      if (code !== 'EEXIST') throw err;
    }
    const pid = holder(path);
    if (pid === undefined || (pid !== process.pid && !alive(pid))) {
      // Its holder died without releasing it (or was killed while writing its pid): take it over.
      rmSync(path, { force: true });
      continue;
    }
    if (!told) {
      told = true;
      opts.onWait?.(pid);
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 500));
  }
  const release = () => {
    if (holder(path) !== process.pid) return;
    rmSync(path, { force: true });
    if (!made) return;
    try {
      for (let dir = dirname(path); ; dir = dirname(dir)) {
        rmdirSync(dir); // only when empty
        if (dir === made) break;
      }
    } catch {
      // Not empty: the command put something there.
    }
  };
  process.once('exit', release);
  try {
    return await fn();
  } finally {
    process.removeListener('exit', release);
    release();
  }
}
