/**
 * Response caching in Redis for deterministic Ollama calls. See
 * docs/caching.md for the strategy; this header states the key layout.
 *
 * Redis keys (all under `<prefix>:cache:{<model>}:`; values are JSON). The
 * model name is the hash tag: on a Redis Cluster every key of one model shares
 * a slot, so the MULTI that writes an entry and its set, the MGET of a batch
 * of embeddings and the invalidation script stay on one node.
 *   chat:<sha256>           a chat answer { model, text, doneReason, promptTokens, completionTokens, at, by }, TTL chatTtlS.
 *                           sha256 of canonical JSON { v, digest, messages, options, format }.
 *   emb:<digest>:<sha256>   one embedding of one text under one model digest, TTL embedTtlS:
 *                           { v: number[], t: prompt tokens it cost, by } (an older entry is the bare number[]).
 *
 * `by` is a scope tag (scopeTag: the first 16 hex digits of sha256 of the job owner's id) of whoever
 * caused the entry to be written. Entries are shared by everyone, so the cache keeps its value across
 * users; but only an entry of the caller's own scope is reported as a hit (`cached`, `cacheHits`, zero
 * usage). An entry another user caused is served just the same and reported as if computed, with the
 * tokens it cost then, so neither the flag nor the usage tells anyone what others asked.
 *   digest                  the digest this model name resolved to when an entry was last written for it.
 *   keys:<digest>           SET of the entry keys written for the model while it had <digest>; expires with the longest entry.
 *
 * Invalidation: the digest is part of every key, so a model rebuilt under the
 * same name (new digest) can never be answered from the old build's entries.
 * When a process first sees a model's digest differ from `digest:<model>`, it
 * deletes the old digest's set of entries (the Lua script below), so they do
 * not linger until their TTL.
 *
 * Canonical JSON: object keys sorted recursively, arrays kept in order,
 * `undefined` members dropped; two requests that differ only in key order or
 * absent options share an entry.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { ChatMessage, OllamaFormat, OllamaOptions } from '../../shared/index.ts';

export type CacheMode = 'default' | 'bypass';
export type CacheKind = 'chat' | 'embed';
/**
 * hit / miss: looked up; bypass: the caller asked to skip the cache;
 * skip: cacheable in principle but not now (model digest unknown, or hosts
 * disagree on it); error: Redis failed (the call went upstream).
 */
export type CacheOutcome = 'hit' | 'miss' | 'bypass' | 'skip' | 'error';

export interface CacheOptions {
  prefix: string;
  /** @defaultValue 3 600 s */
  chatTtlS: number;
  /** Embeddings of a fixed model never change. @defaultValue 604 800 s (7 days) */
  embedTtlS: number;
}

export interface CachedChat {
  model: string;
  text: string;
  doneReason?: string;
  /** The counts Ollama reported when the answer was computed (kept for audit; a hit reports 0 usage). */
  promptTokens: number;
  completionTokens: number;
  at: string;
  /** scopeTag of the caller that caused it to be computed; absent on entries written without a scope. */
  by?: string;
}

/** One cached embedding: the vector, the prompt tokens its text cost (apportioned within its batch), the writer's scope tag. */
export interface CachedEmbedding {
  v: number[];
  t?: number;
  by?: string;
}

/** The tag an entry carries for a scope (a job owner's id); undefined without a scope. */
export function scopeTag(scope: string | undefined): string | undefined {
  return scope === undefined ? undefined : createHash('sha256').update(scope).digest('hex').slice(0, 16);
}

export interface ChatKeyInput {
  messages: ChatMessage[];
  options?: OllamaOptions;
  format?: OllamaFormat;
}

/**
 * Records a model name's current digest; deletes the entries of its previous one.
 * KEYS[1]  <prefix>:cache:{<model>}:digest
 * ARGV[1]  the current digest
 * ARGV[2]  "<prefix>:cache:{<model>}:keys:" (the old set is ARGV[2] .. old digest; computed here.
 *          The set and its entries carry the same hash tag as KEYS[1], so on a cluster they are
 *          in its slot, on the node that runs the script)
 * ARGV[3]  TTL in seconds of the digest record
 * Returns  the number of entries deleted (0 when unchanged or first seen).
 */
const noteDigestScript = `
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[3]))
if not old or old == ARGV[1] then return 0 end
local set = ARGV[2] .. old
local members = redis.call('SMEMBERS', set)
for i = 1, #members, 500 do
  redis.call('DEL', unpack(members, i, math.min(i + 499, #members)))
end
redis.call('DEL', set)
return #members
`;

export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortDeep(value));
}

function sortDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortDeep);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortDeep(x);
    }
    return out;
  }
  return v;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** Deterministic sampling: greedy (temperature 0) or a fixed seed. Only these answers are cached. */
export function isDeterministic(options: OllamaOptions | undefined): boolean {
  return options?.temperature === 0 || options?.seed !== undefined;
}

export class ResponseCache {
  /** Digests this process has already recorded, per model name. */
  private readonly noted = new Map<string, string>();

  constructor(
    private readonly redis: Redis,
    readonly opts: CacheOptions,
  ) {}

  private k(model: string, rest: string): string {
    return `${this.opts.prefix}:cache:{${model}}:${rest}`;
  }

  chatKey(model: string, digest: string, req: ChatKeyInput): string {
    return this.k(model, `chat:${sha256(canonicalJson({ v: 1, digest, messages: req.messages, options: req.options ?? {}, format: req.format ?? null }))}`);
  }

  embedKey(model: string, digest: string, text: string): string {
    return this.k(model, `emb:${digest}:${sha256(text)}`);
  }

  async getChat(key: string): Promise<CachedChat | undefined> {
    const raw = await this.redis.get(key);
    return raw ? (JSON.parse(raw) as CachedChat) : undefined;
  }

  async putChat(model: string, digest: string, key: string, value: CachedChat): Promise<void> {
    const set = this.k(model, `keys:${digest}`);
    await this.redis
      .multi()
      .set(key, JSON.stringify(value), 'EX', this.opts.chatTtlS)
      .sadd(set, key)
      .expire(set, Math.max(this.opts.chatTtlS, this.opts.embedTtlS))
      .exec();
  }

  /** One entry per text, `undefined` where there is none. */
  async getEmbeddings(model: string, digest: string, texts: readonly string[]): Promise<(CachedEmbedding | undefined)[]> {
    if (!texts.length) return [];
    const raw = await this.redis.mget(...texts.map((t) => this.embedKey(model, digest, t)));
    return raw.map((r) => {
      if (!r) return undefined;
      const e = JSON.parse(r) as number[] | CachedEmbedding;
      return Array.isArray(e) ? { v: e } : e;
    });
  }

  /** `tokens[i]`: the prompt tokens text i cost; `by`: the writer's scope tag. */
  async putEmbeddings(
    model: string,
    digest: string,
    texts: readonly string[],
    vectors: readonly number[][],
    tokens: readonly number[] = [],
    by?: string,
  ): Promise<void> {
    if (!texts.length) return;
    const set = this.k(model, `keys:${digest}`);
    const tx = this.redis.multi();
    const keys = texts.map((t) => this.embedKey(model, digest, t));
    keys.forEach((key, i) => tx.set(key, JSON.stringify({ v: vectors[i]!, t: tokens[i], by } satisfies CachedEmbedding), 'EX', this.opts.embedTtlS));
    tx.sadd(set, ...keys).expire(set, Math.max(this.opts.chatTtlS, this.opts.embedTtlS));
    await tx.exec();
  }

  /**
   * Call with the digest a model resolves to before using the cache for it.
   * Cheap after the first call per (process, model, digest). Returns the
   * number of stale entries deleted.
   */
  async noteDigest(model: string, digest: string): Promise<number> {
    if (this.noted.get(model) === digest) return 0;
    const deleted = (await this.redis.eval(
      noteDigestScript,
      1,
      this.k(model, 'digest'),
      digest,
      this.k(model, 'keys:'),
      Math.max(this.opts.chatTtlS, this.opts.embedTtlS),
    )) as number;
    this.noted.set(model, digest);
    return deleted;
  }

  /** The set of entry keys recorded for a model under a digest (for tests and operators). */
  entriesOf(model: string, digest: string): Promise<string[]> {
    return this.redis.smembers(this.k(model, `keys:${digest}`));
  }
}
