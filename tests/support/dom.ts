/**
 * A DOM for hook tests, from happy-dom, installed on the global object
 * WITHOUT replacing what Node already has: fetch, URL, AbortController,
 * streams and timers stay Node's. The API under test runs in the same
 * process and must keep talking to Redis, Postgres and Ollama as it does in
 * production (happy-dom's fetch applies a browser's same-origin policy to the
 * server's own calls). Import it before React.
 */
import { Window } from 'happy-dom';

const window = new Window({ url: 'http://arena.test/' });
const g = globalThis as Record<string, unknown>;
for (const name of Object.getOwnPropertyNames(window)) {
  if (name in g || name.startsWith('_')) continue;
  try {
    const v = (window as unknown as Record<string, unknown>)[name];
    g[name] = typeof v === 'function' && !/^[A-Z]/.test(name) ? v.bind(window) : v;
  } catch {
    /* an accessor that throws outside a browsing context */
  }
}
g.window = window;
g.document = window.document;
export { window };
