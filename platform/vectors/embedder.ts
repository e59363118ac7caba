/**
 * Embedding through the platform's Ollama client, for the vector store's
 * writers and readers: what a model is (name, digest, dimensions, how it
 * counts tokens) and its vectors for a list of texts, in batches.
 *
 * The digest makes an index's identity exact: a model re-pulled or
 * re-created under the same name is a different embedding space, and the
 * index built with the old one must not be queried with the new one.
 *
 * Texts go upstream with `truncate: false`: a text longer than the model
 * takes fails loudly instead of being embedded from its first part only.
 */
import { createHash } from 'node:crypto';
import { JobFailure } from '../jobs/index.ts';
import type { OllamaClient } from '../ollama/index.ts';
import type { TokenizerSpec } from './tokens.ts';

export interface EmbeddingModel {
  /** Ollama's canonical name: `all-minilm:latest`. */
  model: string;
  digest: string;
  dimensions: number;
  /** The context Ollama allows the model (its trained length). */
  contextLength: number;
  tokenizer: TokenizerSpec;
}

export interface EmbedOptions {
  signal?: AbortSignal;
  /** Texts per /api/embed call. @defaultValue the embedder's batchSize */
  batchSize?: number;
  /** Called after each batch with the number of texts embedded so far. */
  onProgress?: (done: number) => void;
}

export interface EmbedderOptions {
  /** @defaultValue 32 (bench/codebench measures the choice) */
  batchSize?: number;
  /** Calls in flight at once: two keep Ollama busy while the next request travels. @defaultValue 2 */
  concurrency?: number;
  /** How long a model's description is trusted before its digest is checked again. @defaultValue 10 000 ms */
  describeTtlMs?: number;
}

interface TagsResponse {
  models?: { name?: string; model?: string; digest?: string }[];
}

interface ShowResponse {
  model_info?: Record<string, unknown>;
}

export function canonicalModel(name: string): string {
  return /:[^/]*$/.test(name) ? name : `${name}:latest`;
}

export class Embedder {
  private readonly batchSize: number;
  private readonly concurrency: number;
  private readonly ttlMs: number;
  private readonly described = new Map<string, { at: number; model: Promise<EmbeddingModel> }>();

  constructor(
    private readonly ollama: OllamaClient,
    opts: EmbedderOptions = {},
  ) {
    this.batchSize = opts.batchSize ?? 32;
    this.concurrency = opts.concurrency ?? 2;
    this.ttlMs = opts.describeTtlMs ?? 10_000;
  }

  /** The model's current digest, or undefined when Ollama does not have it. */
  async digest(model: string, signal?: AbortSignal): Promise<string | undefined> {
    const tags = await this.ollama.json<TagsResponse>('GET', '/api/tags', undefined, signal, 10_000);
    const name = canonicalModel(model);
    return tags.models?.find((m) => canonicalModel(m.name ?? m.model ?? '') === name)?.digest;
  }

  /** Name, digest, dimensions and tokenizer of `model`; fails with UPSTREAM_REJECTED when Ollama does not have it. */
  describe(model: string, signal?: AbortSignal): Promise<EmbeddingModel> {
    const name = canonicalModel(model);
    const cached = this.described.get(name);
    if (cached && Date.now() - cached.at < this.ttlMs) return cached.model;
    const loading = (async () => {
      const digest = await this.digest(name, signal);
      if (!digest) throw new JobFailure('UPSTREAM_REJECTED', `embedding model "${name}" is not installed in Ollama`);
      const prev = cached && (await cached.model.catch(() => undefined));
      if (prev && prev.digest === digest) return prev;
      const show = await this.ollama.json<ShowResponse>('POST', '/api/show', { model: name, verbose: true }, signal, 60_000);
      return describeFromShow(name, digest, show);
    })();
    this.described.set(name, { at: Date.now(), model: loading });
    loading.catch(() => this.described.delete(name));
    return loading;
  }

  /** One query's vector; through the response cache when the client has one (queries repeat). */
  async embedQuery(model: string, text: string, signal?: AbortSignal): Promise<Float32Array> {
    const res = await this.ollama.embed({ model, input: [text], truncate: true }, signal);
    return Float32Array.from(res.embeddings[0]!);
  }

  /** Vectors for `texts`, in order. Texts already embedded elsewhere are the caller's to skip. */
  async embed(model: string, texts: readonly string[], opts: EmbedOptions = {}): Promise<{ vectors: Float32Array[]; promptTokens: number }> {
    const size = opts.batchSize ?? this.batchSize;
    const vectors = new Array<Float32Array>(texts.length);
    let promptTokens = 0;
    let done = 0;
    let next = 0;
    const worker = async () => {
      while (next < texts.length) {
        const start = next;
        next += size;
        const batch = texts.slice(start, start + size);
        const res = await this.ollama.embed({ model, input: [...batch], truncate: false }, opts.signal, { cache: 'bypass' });
        res.embeddings.forEach((v, i) => (vectors[start + i] = Float32Array.from(v)));
        promptTokens += res.prompt_eval_count ?? 0;
        done += batch.length;
        opts.onProgress?.(done);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, Math.ceil(texts.length / size)) }, worker));
    return { vectors, promptTokens };
  }
}

function describeFromShow(model: string, digest: string, show: ShowResponse): EmbeddingModel {
  const info = show.model_info ?? {};
  const arch = String(info['general.architecture'] ?? '');
  const dimensions = Number(info[`${arch}.embedding_length`]);
  const contextLength = Number(info[`${arch}.context_length`] ?? 512);
  if (!Number.isInteger(dimensions) || dimensions < 1) throw new JobFailure('UPSTREAM_REJECTED', `cannot tell the embedding dimensions of "${model}"`);
  const tokens = info['tokenizer.ggml.tokens'];
  const tokenizer: TokenizerSpec =
    info['tokenizer.ggml.model'] === 'bert' && Array.isArray(tokens) && tokens.every((t) => typeof t === 'string')
      ? { kind: 'wordpiece', id: createHash('sha256').update(digest).digest('hex').slice(0, 16), vocab: tokens as string[] }
      : // Byte-level BPE vocabularies average more than 3 characters per token on code; 2 leaves a margin.
        { kind: 'estimate', charsPerToken: 2 };
  return { model, digest, dimensions, contextLength, tokenizer };
}
