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
import { canonicalModelName } from '../../shared/index.ts';
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

interface ShowResponse {
  model_info?: Record<string, unknown>;
}

/** Ollama's canonical model name (shared/model-name.ts): `all-minilm` → `all-minilm:latest`. */
export function canonicalModel(name: string): string {
  return canonicalModelName(name);
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

  /**
   * The model's current digest, and a host that has it; undefined when no
   * host does. With several hosts that disagree on the digest there is no
   * single embedding space to speak of: that is undefined too.
   */
  private async placement(model: string, signal?: AbortSignal): Promise<{ digest: string; host: string } | undefined> {
    const inventory = await this.ollama.models.inventory(signal);
    const placed = inventory.models.get(canonicalModel(model));
    if (!placed?.on.length) return undefined;
    const digests = new Set(placed.on.map((o) => o.tag.digest));
    return digests.size === 1 ? { digest: placed.on[0]!.tag.digest, host: placed.on[0]!.host } : undefined;
  }

  /** The model's current digest, or undefined when Ollama does not have it (or its hosts disagree). */
  async digest(model: string, signal?: AbortSignal): Promise<string | undefined> {
    return (await this.placement(model, signal))?.digest;
  }

  /** Name, digest, dimensions and tokenizer of `model`; fails with UPSTREAM_REJECTED when Ollama does not have it. */
  describe(model: string, signal?: AbortSignal): Promise<EmbeddingModel> {
    const name = canonicalModel(model);
    const cached = this.described.get(name);
    if (cached && Date.now() - cached.at < this.ttlMs) return cached.model;
    const loading = (async () => {
      const placed = await this.placement(name, signal);
      if (!placed) throw new JobFailure('UPSTREAM_REJECTED', `embedding model "${name}" is not installed in Ollama (or its hosts hold different builds of it)`);
      const prev = cached && (await cached.model.catch(() => undefined));
      if (prev && prev.digest === placed.digest) return prev;
      const show = await this.ollama.models.show(placed.host, name, signal, { verbose: true });
      if (!show.ok) throw new JobFailure('UPSTREAM_UNAVAILABLE', `cannot describe embedding model "${name}": ${show.message}`);
      return describeFromShow(name, placed.digest, show.value as ShowResponse);
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
