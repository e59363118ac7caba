/**
 * A benchmark's helper process (a load generator, a relay), forked with the
 * same tsx loader as the parent and driven over Node's IPC channel.
 *
 * Protocol, parent → child: { id, body } where body is the helper's own
 * request type; child → parent: { id, ok: true, body } or
 * { id, ok: false, error }. Requests are answered in any order. The parent
 * ends the helper with `close()` (disconnect; the helper exits when its
 * channel closes).
 */
import { fork, type ChildProcess } from 'node:child_process';

type Reply = { id: number; ok: true; body: unknown } | { id: number; ok: false; error: string };

export interface Helper<Req, Res> {
  pid: number;
  call(body: Req): Promise<Res>;
  close(): Promise<void>;
}

export function startHelper<Req, Res>(file: URL, env: NodeJS.ProcessEnv = process.env): Promise<Helper<Req, Res>> {
  const child: ChildProcess = fork(file, [], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let next = 0;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  child.on('message', (m: Reply) => {
    const w = waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    if (m.ok) w.resolve(m.body);
    else w.reject(new Error(m.error));
  });
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code) => {
      for (const w of waiting.values()) w.reject(new Error(`helper ${file.pathname} exited (${code})`));
      waiting.clear();
      resolve();
    }),
  );
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    // The helper says { id: -1 } once it is listening.
    const ready = (m: Reply) => {
      if (m.id !== -1) return;
      child.off('message', ready);
      resolve({
        pid: child.pid!,
        call: (body) =>
          new Promise<Res>((res, rej) => {
            const id = next++;
            waiting.set(id, { resolve: res as (v: unknown) => void, reject: rej });
            child.send({ id, body });
          }),
        close: async () => {
          if (child.connected) child.disconnect();
          const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(timer);
        },
      });
    };
    child.on('message', ready);
  });
}

/** In the helper: answers each request with `handle`, and exits when the parent disconnects. */
export function serveHelper<Req, Res>(handle: (body: Req) => Promise<Res>, onClose: () => Promise<void> = async () => {}): void {
  if (!process.send) throw new Error('a helper must be started with startHelper (no IPC channel)');
  process.on('message', (m: { id: number; body: Req }) => {
    handle(m.body).then(
      (body) => process.send!({ id: m.id, ok: true, body }),
      (err: unknown) => process.send!({ id: m.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
    );
  });
  process.once('disconnect', () => {
    onClose().finally(() => process.exit(0));
  });
  process.send({ id: -1, ok: true, body: null });
}
