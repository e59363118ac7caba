/**
 * A model's digest, for cache keys: the sha256 of its manifest as `/api/tags`
 * reports it. The digest changes whenever the weights, template, system
 * prompt or parameters change (a re-pull, or `ollama create` over the name),
 * so a key containing it can never serve an answer of another model build.
 *
 * Lookups are cached for `ttlMs` (concurrent lookups share one request). With
 * several hosts every reachable host is asked; if the hosts that have the
 * model disagree on its digest, there is no single answer and the result is
 * `undefined` (callers then do not cache).
 */
import { normalizeModel } from './status.ts';
import type { HostTransport } from './transport.ts';

interface TagsResponse {
  models?: { name?: string; model?: string; digest?: string }[];
}

export class DigestResolver {
  private snapshot: { at: number; digests: Map<string, string | undefined> } | undefined;
  private loading: Promise<Map<string, string | undefined>> | undefined;

  constructor(
    /** Hosts to ask now (the client passes those whose breaker is not open). */
    private readonly hosts: () => readonly HostTransport[],
    private readonly opts: { ttlMs: number; timeoutMs: number; connectTimeoutMs: number },
  ) {}

  async digest(model: string): Promise<string | undefined> {
    const fresh = this.snapshot && Date.now() - this.snapshot.at < this.opts.ttlMs ? this.snapshot.digests : await this.load();
    return fresh.get(normalizeModel(model));
  }

  /** Forgets the cached view (e.g. after a model was pulled or re-created here). */
  invalidate(): void {
    this.snapshot = undefined;
  }

  private load(): Promise<Map<string, string | undefined>> {
    return (this.loading ??= this.fetch().finally(() => (this.loading = undefined)));
  }

  private async fetch(): Promise<Map<string, string | undefined>> {
    const answers = await Promise.allSettled(this.hosts().map((t) => t.json<TagsResponse>('GET', '/api/tags', undefined, this.opts)));
    const digests = new Map<string, string | undefined>();
    for (const a of answers) {
      if (a.status !== 'fulfilled') continue;
      for (const m of a.value.models ?? []) {
        const name = m.name ?? m.model;
        if (!name || !m.digest) continue;
        const key = normalizeModel(name);
        // A second, different digest for the same name: the fleet is inconsistent.
        if (!digests.has(key)) digests.set(key, m.digest);
        else if (digests.get(key) !== m.digest) digests.set(key, undefined);
      }
    }
    // All hosts failed: keep nothing, so the next lookup asks again.
    if (answers.some((a) => a.status === 'fulfilled')) this.snapshot = { at: Date.now(), digests };
    return digests;
  }
}
