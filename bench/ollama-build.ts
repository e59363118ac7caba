/**
 * Benchmark: the Ollama the service manager builds for this CPU
 * (`-O3 -march=native`) against the portable build (cgo's default `-O2`,
 * baseline x86-64), same version, same models, measured in the same run.
 *
 *   npx tsx bench/ollama-build.ts
 *
 * Env: BENCH_PAIRS (default 3). Needs the managed services' model store
 * (`npm run services -- up` first); builds the portable flavour into the
 * cache if it is missing (a few minutes, once).
 *
 * Both servers run side by side on free ports over the same model folder;
 * requests alternate (portable, native, portable, ...) so neither gets a
 * quieter machine. Each figure comes from Ollama's own timings:
 * - prompt processing: prompt_eval_count / prompt_eval_duration of a ~450
 *   token prompt that is new each time (no KV-cache reuse);
 * - generation: eval_count / eval_duration of 128 tokens at temperature 0;
 * - embeddings: 8 chunks of 1,000 characters per /api/embed, by wall time.
 * Targets (issue: the first run): native >= 218 tok/s prompt, >= 67 tok/s
 * generation, >= 7.3 chunks/s embeddings on the 2-core machine class.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { z } from 'zod';
import { buildOllamaFlavour, ollamaBinary, ollamaFlavours } from '../scripts/services/build.ts';
import { settings } from '../scripts/services/settings.ts';
import { printVerdicts, type Figure } from './internal/stats.ts';

const Env = z.object({ BENCH_PAIRS: z.coerce.number().int().min(1).max(20).default(3) });
const env = Env.parse(process.env);
const chatModel = settings.chatModel;
const embedModel = settings.embedModel;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.once('error', reject);
  });
}

async function startServer(bin: string, label: string): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const models = join(settings.dataDir, 'ollama', 'models');
  if (!existsSync(models)) throw new Error(`no model store at ${models}: run \`npm run services -- up\` first`);
  const child = spawn(bin, ['serve'], {
    env: {
      ...process.env,
      OLLAMA_HOST: `127.0.0.1:${port}`,
      OLLAMA_MODELS: models,
      OLLAMA_NOPRUNE: '1',
      OLLAMA_NUM_PARALLEL: '1',
      OLLAMA_MAX_LOADED_MODELS: '2',
      OLLAMA_KEEP_ALIVE: '30m',
    },
    stdio: 'ignore',
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (
      await fetch(`${url}/api/version`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return { url, child };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`the ${label} Ollama did not start`);
}

let seed = 0x5eed;
function words(n: number): string {
  const vocab = [
    'river',
    'engine',
    'market',
    'theory',
    'garden',
    'signal',
    'harbor',
    'lantern',
    'budget',
    'canyon',
    'pixel',
    'orbit',
    'meadow',
    'ledger',
    'violin',
    'quartz',
    'summit',
    'thread',
    'beacon',
    'glacier',
  ];
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    out.push(vocab[seed % vocab.length]!);
  }
  return out.join(' ');
}

async function post<T>(url: string, path: string, body: unknown): Promise<T> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

interface Timings {
  prompt_eval_count: number;
  prompt_eval_duration: number;
  eval_count: number;
  eval_duration: number;
}

async function promptRate(url: string): Promise<number> {
  const r = await post<Timings>(url, '/api/generate', {
    model: chatModel,
    prompt: `Summarise: ${words(400)}`,
    stream: false,
    options: { num_predict: 1, temperature: 0 },
  });
  return r.prompt_eval_count / (r.prompt_eval_duration / 1e9);
}

async function genRate(url: string): Promise<number> {
  const r = await post<Timings>(url, '/api/generate', {
    model: chatModel,
    prompt: `Write a long story about ${words(3)}.`,
    stream: false,
    options: { num_predict: 128, temperature: 0 },
  });
  return r.eval_count / (r.eval_duration / 1e9);
}

async function embedRate(url: string): Promise<number> {
  const chunks = Array.from({ length: 8 }, () => words(200).slice(0, 1000));
  const t0 = performance.now();
  await post(url, '/api/embed', { model: embedModel, input: chunks });
  return chunks.length / ((performance.now() - t0) / 1000);
}

const flavours = ollamaFlavours();
const native = flavours.find((f) => f.name === 'native');
const portable = flavours.find((f) => f.name === 'portable');
if (!native || !portable) throw new Error('PARLEY_OLLAMA_BUILD=portable leaves nothing to compare');
for (const f of [native, portable]) {
  if (!existsSync(ollamaBinary(f))) {
    console.error(`building the ${f.name} flavour first (once)`);
    mkdirSync(settings.cacheDir, { recursive: true });
    await buildOllamaFlavour(f);
  }
}
const servers = { portable: await startServer(ollamaBinary(portable), 'portable'), native: await startServer(ollamaBinary(native), 'native') };
try {
  // Warm-up: load both models on both servers.
  for (const s of Object.values(servers)) {
    await genRate(s.url);
    await embedRate(s.url);
  }
  const figs = {
    prompt: { baseline: [] as number[], parley: [] as number[] },
    gen: { baseline: [] as number[], parley: [] as number[] },
    embed: { baseline: [] as number[], parley: [] as number[] },
  };
  for (let i = 0; i < env.BENCH_PAIRS; i++) {
    figs.prompt.baseline.push(await promptRate(servers.portable.url));
    figs.prompt.parley.push(await promptRate(servers.native.url));
    figs.gen.baseline.push(await genRate(servers.portable.url));
    figs.gen.parley.push(await genRate(servers.native.url));
    figs.embed.baseline.push(await embedRate(servers.portable.url));
    figs.embed.parley.push(await embedRate(servers.native.url));
    console.log(
      `pair ${i + 1}: prompt ${figs.prompt.baseline.at(-1)!.toFixed(0)} → ${figs.prompt.parley.at(-1)!.toFixed(0)} tok/s, generation ${figs.gen.baseline.at(-1)!.toFixed(1)} → ${figs.gen.parley.at(-1)!.toFixed(1)} tok/s, embeddings ${figs.embed.baseline.at(-1)!.toFixed(2)} → ${figs.embed.parley.at(-1)!.toFixed(2)} chunks/s`,
    );
  }
  const figures: Figure[] = [
    {
      name: `${chatModel} prompt processing`,
      unit: 'tok/s',
      better: 'higher',
      ...figs.prompt,
      target: 'native >= 218 tok/s',
      met: (m) => m.parley >= 218,
      digits: 0,
    },
    { name: `${chatModel} generation`, unit: 'tok/s', better: 'higher', ...figs.gen, target: 'native >= 67 tok/s', met: (m) => m.parley >= 67, digits: 1 },
    {
      name: `${embedModel} 1000-char chunks`,
      unit: 'ch/s',
      better: 'higher',
      ...figs.embed,
      target: 'native >= 7.3 chunks/s',
      met: (m) => m.parley >= 7.3,
      digits: 2,
    },
  ];
  printVerdicts(`Ollama v0.11.4, native (${native.key}) vs portable build`, figures);
} finally {
  for (const s of Object.values(servers)) s.child.kill('SIGTERM');
}
