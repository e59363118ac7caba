/**
 * The Ollama the service manager builds from source serves two real models:
 * a chat model that streams tokens and an embedding model whose vectors carry
 * meaning. Nothing here is stubbed; every answer comes from the model.
 */
import { existsSync, readFileSync } from 'node:fs';
import { Ollama, type ChatResponse } from 'ollama';
import { describe, expect, it } from 'vitest';
import { usableCpus } from '../../platform/host.ts';
import { chooseThreads, type SpeedCheck, type SpeedSample } from '../../scripts/services/ollama.ts';
import { settings, versions } from '../../scripts/services/settings.ts';
import { serviceEnv } from './service-env.ts';

const client = new Ollama({ host: serviceEnv('OLLAMA_HOST') });
const chatModel = serviceEnv('PARLEY_CHAT_MODEL');
const embedModel = serviceEnv('PARLEY_EMBED_MODEL');

/** `/api/tags` names an untagged model `name:latest`. */
function tagged(model: string): string {
  return model.includes(':') ? model : `${model}:latest`;
}

async function streamChat(prompt: string): Promise<ChatResponse[]> {
  const stream = await client.chat({
    model: chatModel,
    messages: [{ role: 'user', content: prompt }],
    stream: true,
    options: { num_predict: 32, temperature: 0, seed: 7 },
  });
  const chunks: ChatResponse[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

function cosine(a: number[], b: number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return dot / Math.sqrt(na * nb);
}

describe('Ollama', () => {
  it('reports the version pinned in the service settings', async () => {
    const { version } = await client.version();
    expect(version).toBe(versions.ollama);
  });

  it('lists both the chat model and the embedding model', async () => {
    const { models } = await client.list();
    const names = models.map((m) => m.name);
    expect(names).toContain(tagged(chatModel));
    expect(names).toContain(tagged(embedModel));
  });

  it('gives both models the thread count the speed check of `up` kept: of one per usable CPU and one, the faster that never stalled', async () => {
    // ggml's threads spin at every step waiting for each other: more threads than usable CPUs collapse,
    // and so can a VM whose CPUs its host shares. `up` timed both counts when it started this Ollama.
    expect(existsSync(settings.speedFile), `${settings.speedFile}: restart the services (npm run services -- down, then up)`).toBe(true);
    const check = JSON.parse(readFileSync(settings.speedFile, 'utf8')) as SpeedCheck;
    const pinned = process.env.PARLEY_OLLAMA_THREADS ? Number(process.env.PARLEY_OLLAMA_THREADS) : undefined;
    if (pinned) expect(settings.ollamaThreads).toBe(pinned);
    else if (check.pinned) expect(settings.ollamaThreads, 'a pinned record does not stand without the variable').toBe(usableCpus());
    else {
      const counts = [...new Set(check.samples.map((s) => s.threads))].sort();
      expect(counts).toEqual([...new Set([1, usableCpus()])].sort());
      // The kept count is what the rule (chooseThreads, its table below) makes of the recorded samples, and it had a timed sample.
      expect(check.chosen, JSON.stringify(check.samples)).toBe(chooseThreads(check.samples));
      expect(
        check.samples.some((s) => s.threads === check.chosen && (s.tokensPerSecond ?? 0) > 0),
        JSON.stringify(check.samples),
      ).toBe(true);
      expect(settings.ollamaThreads).toBe(check.chosen);
    }
    for (const model of [chatModel, embedModel]) {
      const { parameters } = await client.show({ model });
      expect(/^num_thread\s+(\d+)\s*$/m.exec(parameters)?.[1], model).toBe(String(settings.ollamaThreads));
    }
  });

  it('keeps the fastest count that never stalled, the larger one on a tie, and one thread when no count answered in time', () => {
    const timed = (threads: number, tokensPerSecond: number): SpeedSample => ({ threads, tokensPerSecond });
    const failed = (threads: number, error: string): SpeedSample => ({ threads, error });
    const cases: [string, SpeedSample[], number][] = [
      ['faster wins', [timed(2, 90), timed(1, 70)], 2],
      ['a collapse loses', [timed(2, 0.2), timed(1, 70)], 1],
      ['a timeout loses', [failed(2, 'no answer within 20 s'), timed(1, 3)], 1],
      [
        'a count that stalled once loses, however fast its other sample',
        [timed(2, 99.3), timed(1, 86.1), failed(2, 'no answer within 20 s'), timed(1, 74.4)],
        1,
      ],
      ['when every count stalled once, the timed samples decide', [timed(2, 90), failed(2, 'HTTP 500'), timed(1, 70), failed(1, 'HTTP 500')], 2],
      ['a tie keeps the larger', [timed(1, 50), timed(4, 50)], 4],
      ['nothing answered', [failed(4, 'HTTP 500'), failed(1, 'no answer within 20 s')], 1],
    ];
    for (const [why, samples, threads] of cases) expect(chooseThreads(samples), why).toBe(threads);
  });

  it('streams a chat reply as several non-empty token chunks', async () => {
    const chunks = await streamChat('Name three colours of the rainbow.');
    const tokens = chunks.filter((c) => !c.done && c.message.content.length > 0);
    expect(tokens.length).toBeGreaterThanOrEqual(3);
    expect(
      tokens
        .map((c) => c.message.content)
        .join('')
        .trim(),
    ).not.toBe('');
  });

  it('ends a chat stream with one done chunk that counts prompt and generated tokens', async () => {
    const chunks = await streamChat('Say hello to a new colleague.');
    const final = chunks.at(-1);
    expect(chunks.filter((c) => c.done)).toHaveLength(1);
    expect(final?.done).toBe(true);
    expect(final?.prompt_eval_count).toBeGreaterThan(0);
    expect(final?.eval_count).toBeGreaterThan(0);
  });

  it('embeds each input as a 384-dimension vector', async () => {
    const input = ['The first sentence.', 'A second, different sentence.'];
    const { embeddings } = await client.embed({ model: embedModel, input });
    expect(embeddings).toHaveLength(input.length);
    for (const v of embeddings) {
      expect(v).toHaveLength(384);
      expect(v.every(Number.isFinite)).toBe(true);
    }
  });

  it('embeds two paraphrases closer together than an unrelated sentence', async () => {
    const { embeddings } = await client.embed({
      model: embedModel,
      input: ['A cat is sleeping on the sofa.', 'The kitten naps on the couch.', 'Quarterly tax returns are due at the end of April.'],
    });
    const [cat, kitten, tax] = embeddings as [number[], number[], number[]];
    const similar = cosine(cat, kitten);
    const unrelated = cosine(cat, tax);
    expect(similar).toBeGreaterThan(unrelated);
  });
});
