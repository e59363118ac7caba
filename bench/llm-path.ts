/**
 * Benchmark: what matters most for an LLM platform, against Ollama itself,
 * on the real chat model, measured in the same run.
 *
 *   npx tsx bench/llm-path.ts
 *
 * Env: BENCH_TTFT_SAMPLES (default 20 per side), BENCH_TOKENS (default 96,
 * num_predict of the throughput runs), BENCH_CONCURRENCY_LEVELS (default
 * "1,2,4"), BENCH_ROUNDS (default 3).
 *
 * 1. Time to first token. Direct: POST /api/chat (stream) to Ollama, clock
 *    stopped at the first chunk with text. Parley: POST /v1/jobs over HTTP,
 *    then the job's SSE stream, clock stopped at the first `tokens` event:
 *    auth, validation, the record, the queue, the worker's bookkeeping, the
 *    Ollama call, the stream and the relay are all inside. Requests
 *    alternate (direct, Parley, ...), each prompt new (no KV-cache reuse),
 *    num_predict 4. Target: Parley p50 <= direct + 5 ms, p95 <= direct + 15 ms.
 * 2. Aggregate tokens/s at 1, 2 and 4 concurrent chats (num_predict
 *    BENCH_TOKENS, temperature 0.7, BENCH_ROUNDS rounds per side, default 3):
 *    the tokens Ollama reports generated over the wall time of the whole
 *    round, direct and through Parley (submit and SSE as above). The prompt
 *    asks for more than num_predict, so every chat runs to the limit (the
 *    count of chats that did is printed): rounds differ by the path, not by
 *    where sampling happened to stop. Target: Parley >= 0.95 x direct at
 *    each level.
 * 3. 2x overload: twice Ollama's parallel slots of concurrent chats through
 *    Parley. Target: 0 upstream 503s (Parley's Ollama client counts every
 *    overload answer it retried: parley_ollama_retries_total{reason="overload"}),
 *    and every job completes.
 *
 * The API and one worker process run in this process (api/main.ts startApi,
 * workers/main.ts startWorkers for the llm queue), as in the other benches.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { startApi } from '../api/main.ts';
import { startWorkers } from '../workers/main.ts';
import { cleanup, configOf, createMember, parleyEnv, teardownOnExit, uniquePrefix } from './internal/parley.ts';
import { fmt, printVerdicts, summarize, type Figure } from './internal/stats.ts';

const env = z
  .object({
    BENCH_TTFT_SAMPLES: z.coerce.number().int().min(3).max(500).default(20),
    BENCH_TOKENS: z.coerce.number().int().min(8).max(2048).default(96),
    BENCH_CONCURRENCY_LEVELS: z.string().default('1,2,4'),
    BENCH_ROUNDS: z.coerce.number().int().min(1).max(20).default(3),
  })
  .parse(process.env);
const levels = env.BENCH_CONCURRENCY_LEVELS.split(',')
  .map(Number)
  .filter((n) => n > 0);

const prefix = uniquePrefix('llm');
const pEnv = parleyEnv(prefix, { PARLEY_CACHE: 'false', PARLEY_RATE_JOBS_WRITE: 'member=100000000', PARLEY_ROLE_CAPS: '{"member":{"maxConcurrentJobs":64}}' });
const config = configOf(pEnv);
const ollamaUrl = config.ollama.host;
const model = config.ollama.chatModel;
const api = await startApi(pEnv);
const workers = await startWorkers(pEnv, { queues: ['llm'] });
const user = await createMember(api);
const base = `http://127.0.0.1:${api.port}`;
const teardown = teardownOnExit(async () => {
  await workers.stop();
  await cleanup({ redis: api.redis, db: api.db, prefixes: [prefix], userIds: [user.id] });
  await api.stop();
});

const words = ['harbor', 'lantern', 'meadow', 'quartz', 'signal', 'violin', 'canyon', 'orbit', 'ledger', 'beacon'];
const word = () => words[Math.floor(Math.random() * words.length)];
const prompt = () => `In one sentence, what do ${word()} and ${randomUUID().slice(0, 6)} have in common?`;
/**
 * The throughput runs ask for more text than num_predict allows, so every chat of a round generates
 * exactly num_predict tokens on both sides: a round's wall time is not decided by which chat happened
 * to sample an early end (each chat's done_reason is counted and printed).
 */
const longPrompt = () => `Write a long story, at least 400 words, about a ${word()} named ${randomUUID().slice(0, 6)}.`;

/** Direct: streams /api/chat; resolves at the end with the first-text time and Ollama's counts. */
async function direct(numPredict: number, ask = prompt): Promise<{ ttftMs: number; tokens: number; full: boolean }> {
  const t0 = performance.now();
  const res = await fetch(`${ollamaUrl}/api/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: ask() }], stream: true, options: { num_predict: numPredict, temperature: 0.7 } }),
  });
  if (!res.ok || !res.body) throw new Error(`ollama ${res.status}`);
  let ttft = Number.NaN;
  let tokens = 0;
  let full = false;
  let buf = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body) {
    buf += decoder.decode(chunk as Uint8Array, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (!line.trim()) continue;
      const j = JSON.parse(line) as { message?: { content?: string }; done?: boolean; done_reason?: string; eval_count?: number };
      if (j.message?.content && Number.isNaN(ttft)) ttft = performance.now() - t0;
      if (j.done) [tokens, full] = [j.eval_count ?? 0, j.done_reason === 'length'];
    }
  }
  return { ttftMs: ttft, tokens, full };
}

/** Through Parley: submit over HTTP, stream the job over SSE; first `tokens` event and the recorded usage. */
async function viaParley(numPredict: number, ask = prompt): Promise<{ ttftMs: number; tokens: number; full: boolean }> {
  const t0 = performance.now();
  const auth = { authorization: `Bearer ${user.token}` };
  const sub = await fetch(`${base}/v1/jobs`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({
      kind: 'llm.chat',
      input: { messages: [{ role: 'user', content: ask() }], options: { num_predict: numPredict, temperature: 0.7 }, cache: 'bypass' },
    }),
  });
  if (sub.status !== 202) throw new Error(`submit ${sub.status}: ${await sub.text()}`);
  const { id } = (await sub.json()) as { id: string };
  const res = await fetch(`${base}/v1/jobs/${id}/events`, { headers: auth });
  if (!res.ok || !res.body) throw new Error(`sse ${res.status}`);
  let ttft = Number.NaN;
  let tokens = 0;
  let full = false;
  let buf = '';
  const decoder = new TextDecoder();
  outer: for await (const chunk of res.body) {
    buf += decoder.decode(chunk as Uint8Array, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const event = /^event: (.*)$/m.exec(frame)?.[1];
      if (event === 'tokens' && Number.isNaN(ttft)) ttft = performance.now() - t0;
      if (event === 'finished') {
        const data = JSON.parse(/^data: (.*)$/m.exec(frame)![1]!) as { state: string; usage?: { completionTokens: number }; result?: { doneReason?: string } };
        if (data.state !== 'completed') throw new Error(`job ${id} ${data.state}`);
        tokens = data.usage?.completionTokens ?? 0;
        full = data.result?.doneReason === 'length';
        break outer;
      }
    }
  }
  return { ttftMs: ttft, tokens, full };
}

try {
  // Warm-up: the model is loaded and both paths are hot.
  for (let i = 0; i < 3; i++) {
    await direct(4);
    await viaParley(4);
  }

  // 1. TTFT, alternating.
  const ttft = { direct: [] as number[], parley: [] as number[] };
  for (let i = 0; i < env.BENCH_TTFT_SAMPLES; i++) {
    ttft.direct.push((await direct(4)).ttftMs);
    ttft.parley.push((await viaParley(4)).ttftMs);
  }
  const d = summarize(ttft.direct);
  const p = summarize(ttft.parley);
  const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(0.95 * xs.length) - 1)]!;
  console.log(
    `TTFT over ${env.BENCH_TTFT_SAMPLES} requests each: direct p50 ${fmt(d.p50)} ms p95 ${fmt(p95(ttft.direct))} ms; Parley p50 ${fmt(p.p50)} ms p95 ${fmt(p95(ttft.parley))} ms`,
  );

  // 2. Throughput at each concurrency level, direct then Parley, twice.
  const figures: Figure[] = [
    {
      name: 'time to first token, p50',
      unit: 'ms',
      better: 'lower',
      baseline: [d.p50],
      parley: [p.p50],
      target: 'Parley <= direct + 5 ms',
      met: (m) => m.parley <= m.baseline + 5,
    },
    {
      name: 'time to first token, p95',
      unit: 'ms',
      better: 'lower',
      baseline: [p95(ttft.direct)],
      parley: [p95(ttft.parley)],
      target: 'Parley <= direct + 15 ms',
      met: (m) => m.parley <= m.baseline + 15,
    },
  ];
  for (const k of levels) {
    const rate = { direct: [] as number[], parley: [] as number[] };
    const full = { direct: 0, parley: 0 };
    for (let round = 0; round < env.BENCH_ROUNDS; round++) {
      for (const [side, fn] of [
        ['direct', direct],
        ['parley', viaParley],
      ] as const) {
        const t0 = performance.now();
        const outs = await Promise.all(Array.from({ length: k }, () => fn(env.BENCH_TOKENS, longPrompt)));
        const seconds = (performance.now() - t0) / 1000;
        rate[side].push(outs.reduce((n, o) => n + o.tokens, 0) / seconds);
        full[side] += outs.filter((o) => o.full).length;
      }
    }
    const chats = k * env.BENCH_ROUNDS;
    console.log(
      `${k} concurrent: direct ${rate.direct.map((x) => x.toFixed(1)).join(', ')} tok/s; Parley ${rate.parley.map((x) => x.toFixed(1)).join(', ')} tok/s ` +
        `(chats that ran to num_predict: direct ${full.direct}/${chats}, Parley ${full.parley}/${chats})`,
    );
    figures.push({
      name: `tokens/s at ${k} concurrent chats`,
      unit: 'tok/s',
      better: 'higher',
      baseline: rate.direct,
      parley: rate.parley,
      target: 'Parley >= 0.95 x direct',
      met: (m) => m.ratio >= 0.95,
      digits: 1,
    });
  }

  // 3. 2x overload: twice the parallel slots Ollama was started with (4 for the managed one).
  const slots = Number(process.env.OLLAMA_NUM_PARALLEL ?? 4);
  const before = await overloadRetries();
  const outs = await Promise.allSettled(Array.from({ length: 2 * slots }, () => viaParley(32)));
  const failed = outs.filter((o) => o.status === 'rejected').length;
  const retried = (await overloadRetries()) - before;
  console.log(`2x overload: ${2 * slots} concurrent chats, ${failed} failed, ${retried} upstream 503s (overload answers retried by the client)`);
  figures.push({
    name: 'upstream 503s at 2x overload',
    unit: '',
    better: 'lower',
    baseline: [0],
    parley: [retried + failed],
    target: '0 (and every job completes)',
    met: (m) => m.parley === 0,
    digits: 0,
  });
  printVerdicts('LLM path: Parley against Ollama directly', figures);
} finally {
  await teardown();
}

async function overloadRetries(): Promise<number> {
  const text = await workers.metrics.registry.metrics();
  let n = 0;
  for (const m of text.matchAll(/^parley_ollama_retries_total\{[^}]*reason="overload"[^}]*\} (\d+(?:\.\d+)?)/gm)) n += Number(m[1]);
  return n;
}
