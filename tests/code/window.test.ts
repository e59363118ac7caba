/**
 * Chunks fit the embedding model: on real libraries, every chunk's text
 * (header included) counts at most the window's tokens minus [CLS] and
 * [SEP], and Ollama, asked to embed it without truncation, counts the same.
 * Long definitions are split, and each part carries the header.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { libraries, librarySources } from '../../bench/codebench/libraries.ts';
import { loadConfig } from '../../platform/config.ts';
import { createOllamaClient, type OllamaClient } from '../../platform/ollama/index.ts';
import { Embedder, type EmbeddingModel } from '../../platform/vectors/index.ts';
import { extractSource, type ExtractedChunk } from '../../workers/code/extract.ts';

const budget = 254;
let ollama: OllamaClient;
let model: EmbeddingModel;
let chunks: (ExtractedChunk & { path: string })[];

beforeAll(async () => {
  const config = loadConfig(process.env);
  ollama = createOllamaClient(config.ollama);
  model = await new Embedder(ollama).describe(config.ollama.embedModel);
  chunks = [libraries.lodash, libraries.moreItertools, libraries.rxjs].flatMap((lib) =>
    librarySources(lib).flatMap((f) => extractSource(f, { maxTokens: budget, tokenizer: model.tokenizer }).chunks.map((c) => ({ ...c, path: f.path }))),
  );
});
afterAll(() => ollama?.close());

describe('chunks and the model window', () => {
  it('counts the model’s own tokens (WordPiece from Ollama)', () => {
    expect(model.tokenizer.kind).toBe('wordpiece');
  });

  it('never makes a chunk longer than the window', () => {
    expect(chunks.length).toBeGreaterThan(1500);
    const over = chunks.filter((c) => c.tokens > budget);
    expect(over.map((c) => `${c.path}:${c.startLine} ${c.tokens}`)).toEqual([]);
  });

  it('splits long definitions into parts that each carry the header', () => {
    const split = chunks.filter((c) => c.parts > 1);
    expect(split.length).toBeGreaterThan(20);
    for (const c of split) {
      expect(c.header).toContain(`(part ${c.part}/${c.parts})`);
      expect(c.header.startsWith(`${c.path} › `)).toBe(true);
    }
    // Parts of one definition cover its lines in order, without gaps.
    const groups = new Map<string, typeof split>();
    for (const c of split.filter((x) => x.kind !== 'class')) groups.set(`${c.path}|${c.symbol}`, [...(groups.get(`${c.path}|${c.symbol}`) ?? []), c]);
    for (const parts of groups.values()) {
      if (parts.length !== parts[0]!.parts) continue;
      for (let i = 1; i < parts.length; i++) expect(parts[i]!.startLine).toBeLessThanOrEqual(parts[i - 1]!.endLine + 1);
    }
  });

  it('agrees with Ollama’s count, and Ollama embeds every sampled chunk untruncated', { timeout: 900_000 }, async () => {
    // The longest chunks, where an undercount would matter, one call each (Ollama reports one count per call).
    const longest = [...chunks].sort((a, b) => b.tokens - a.tokens).slice(0, 40);
    let exact = 0;
    for (const c of longest) {
      const res = await ollama.embed({ model: model.model, input: [c.text], truncate: false }, undefined, { cache: 'bypass' });
      expect(res.prompt_eval_count, `${c.path}:${c.startLine}`).toBeLessThanOrEqual(budget);
      if (res.prompt_eval_count === c.tokens) exact++;
    }
    expect(exact / longest.length).toBeGreaterThanOrEqual(0.99);
    // A spread of 60 more, 20 per call: the totals agree.
    const spread = chunks.filter((_, i) => i % Math.floor(chunks.length / 60) === 0).slice(0, 60);
    for (let i = 0; i < spread.length; i += 20) {
      const part = spread.slice(i, i + 20);
      const res = await ollama.embed({ model: model.model, input: part.map((c) => c.text), truncate: false }, undefined, { cache: 'bypass' });
      expect(res.prompt_eval_count).toBe(part.reduce((n, c) => n + c.tokens, 0));
    }
  });
});
