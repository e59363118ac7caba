/**
 * A second real Ollama for multi-host tests: the service manager's own build
 * (scripts/services/build.ts), on a free loopback port, with its own model
 * folder under a temporary directory. It gets the chat model from the same
 * cached wheel the service manager uses (blob upload + /api/create, as
 * scripts/services/ollama.ts does), so it serves `smollm2:135m` like the
 * managed host. The caller owns its lifetime: `stop()` ends the server and
 * its runners and removes the folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openAsBlob, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildOllama } from '../../scripts/services/build.ts';
import { cachedChatWheel, chatGguf, chatModelSettings, sha256File } from '../../scripts/services/ollama.ts';
import { freePort } from './private-services.ts';

export interface SecondOllama {
  url: string;
  /** POST /api/create on this host; throws unless Ollama says success. */
  create(body: Record<string, unknown>): Promise<void>;
  stop(): Promise<void>;
}

/** A loopback port nothing listens on (a host that is down). */
export async function deadUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}

export async function startSecondOllama(opts: { chatModel: string }): Promise<SecondOllama> {
  const wheel = cachedChatWheel();
  if (!wheel) throw new Error('the chat model wheel is not in the cache: run `npm run services -- up` first');
  const { bin } = await buildOllama();
  const dir = mkdtempSync(join(tmpdir(), 'parley-ollama-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(bin, ['serve'], {
    env: {
      ...process.env,
      OLLAMA_HOST: `127.0.0.1:${port}`,
      OLLAMA_MODELS: join(dir, 'models'),
      OLLAMA_NOPRUNE: '1',
      OLLAMA_NUM_PARALLEL: '2',
      OLLAMA_MAX_LOADED_MODELS: '2',
      OLLAMA_KEEP_ALIVE: '5m',
    },
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  async function stop(): Promise<void> {
    if (child.exitCode === null && child.signalCode === null) {
      // SIGTERM lets Ollama stop its runner processes; SIGKILL only if it hangs.
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  }

  async function create(body: Record<string, unknown>): Promise<void> {
    const res = await fetch(`${url}/api/create`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ stream: false, ...body }),
    });
    const text = await res.text();
    if (!res.ok || text.includes('"error"')) throw new Error(`create on ${url}: HTTP ${res.status} ${text}`);
  }

  try {
    let up = false;
    for (let i = 0; i < 300 && !up; i++) {
      up = await fetch(`${url}/api/version`).then(
        (r) => r.ok,
        () => false,
      );
      if (!up) await new Promise((r) => setTimeout(r, 100));
    }
    if (!up) throw new Error(`the second Ollama (${bin}) did not answer on ${url}`);
    const path = join(wheel, chatGguf);
    const digest = await sha256File(path);
    const blob = await fetch(`${url}/api/blobs/${digest}`, { method: 'POST', body: await openAsBlob(path) });
    if (!blob.ok) throw new Error(`blob upload to ${url}: HTTP ${blob.status} ${await blob.text()}`);
    await create({ model: opts.chatModel, files: { [chatGguf]: digest }, ...chatModelSettings() });
    return { url, create, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
