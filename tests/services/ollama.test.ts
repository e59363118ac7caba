/**
 * The Ollama the service manager builds from source serves two real models:
 * a chat model that streams tokens and an embedding model whose vectors carry
 * meaning. Nothing here is stubbed; every answer comes from the model.
 */
import { Ollama, type ChatResponse } from 'ollama';
import { describe, expect, it } from 'vitest';
import { versions } from '../../scripts/services/settings.ts';
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
