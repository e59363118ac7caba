/**
 * Model status monitoring: a background poller of every Ollama host.
 *
 * Every `intervalMs` it asks each host, in parallel:
 *   GET /api/version  up or down (down after `downAfter` failed polls in a row)
 *   GET /api/tags     installed models (name, digest, size)
 *   GET /api/ps       loaded models (size, size_vram, expires_at)
 * and keeps the last answer of each. Polls never overlap; the timer is
 * unref'd. These calls bypass the limiter and the breakers: they are cheap
 * and must keep working while generation traffic is shed.
 *
 * Consumers: the router (prefer hosts where a model is loaded), admission
 * (is a model installed anywhere: `isKnown`), the response cache (a model's
 * digest), metric labels (`modelLabel`), the API's `/v1/models/status` and
 * `/readyz`, Prometheus gauges, and transition listeners (the API tells
 * operators over Socket.IO when a host goes down or comes back). A
 * transition is a change between two observed states; the first
 * observation of a host is not one. Model names are keyed in their
 * canonical form (shared/model-name.ts).
 *
 * The report's shapes are zod schemas so the route's response schema and
 * this module's types are one definition.
 */
import type { Gauge } from 'prom-client';
import { canonicalModelName, type HostModelStatus, type ModelAvailability, type ModelStatusReport, type OllamaHostStatus } from '../../shared/index.ts';
import type { RoutingView } from './router.ts';
import type { HostTransport } from './transport.ts';

export interface StatusOptions {
  /** @defaultValue 5 000 ms */
  intervalMs: number;
  /** Per call. @defaultValue 2 000 ms */
  timeoutMs: number;
  connectTimeoutMs: number;
  /** Failed polls in a row before a host counts as down: one lost poll is not an outage. @defaultValue 2 */
  downAfter: number;
}

export const defaultStatusOptions: StatusOptions = { intervalMs: 5_000, timeoutMs: 2_000, connectTimeoutMs: 2_000, downAfter: 2 };

/** Sent to listeners when a host's `up` changes between two observations. */
export interface HostTransition {
  host: string;
  up: boolean;
  /** ISO time of the poll that saw the change. */
  at: string;
}

interface Installed {
  digest: string;
  size: number;
}
interface Loaded {
  size: number;
  vram: number;
  expiresAt: string | null;
  digest: string;
}
interface HostState {
  url: string;
  transport: HostTransport;
  up: boolean | null;
  version: string | null;
  checkedAt: string | null;
  since: string | null;
  error: string | null;
  failures: number;
  tags: Map<string, Installed> | undefined;
  ps: Map<string, Loaded> | undefined;
}

interface TagsResponse {
  models?: { name?: string; model?: string; digest?: string; size?: number }[];
}
interface PsResponse {
  models?: { name?: string; model?: string; digest?: string; size?: number; size_vram?: number; expires_at?: string }[];
}

export class OllamaStatus implements RoutingView {
  private readonly hosts: HostState[];
  private readonly transitionListeners = new Set<(t: HostTransition) => void>();
  private readonly updateListeners = new Set<(hosts: OllamaHostStatus[]) => void>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private inFlight: { started: number; done: Promise<void> } | undefined;
  /** When the last finished poll started: what it saw is at least that recent. */
  private lastStarted = -Infinity;
  private first: Promise<void> | undefined;

  constructor(
    hosts: readonly { url: string; transport: HostTransport }[],
    readonly opts: StatusOptions = defaultStatusOptions,
  ) {
    this.hosts = hosts.map((h) => ({
      url: h.url,
      transport: h.transport,
      up: null,
      version: null,
      checkedAt: null,
      since: null,
      error: null,
      failures: 0,
      tags: undefined,
      ps: undefined,
    }));
  }

  /** Starts polling; resolves after the first poll. Idempotent. */
  start(): Promise<void> {
    if (this.running) return this.ready();
    this.running = true;
    this.first ??= this.tick();
    return this.first;
  }

  /** Resolves once the first poll after `start()` has finished (at once if never started). */
  ready(): Promise<void> {
    return this.first ?? Promise.resolve();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
  }

  /** Polls every host now (waits for a poll already in flight instead of starting another). */
  refresh(): Promise<void> {
    if (this.inFlight) return this.inFlight.done;
    const started = Date.now();
    const done = this.pollAll().finally(() => {
      this.lastStarted = Math.max(this.lastStarted, started);
      this.inFlight = undefined;
    });
    this.inFlight = { started, done };
    return done;
  }

  /**
   * Resolves once a poll that started at or after `t` has finished: what a
   * host had at `t` is in the view then. A name the view does not know (a
   * model created a moment ago outside Parley) is looked up this way; many
   * callers at once share one poll.
   */
  async freshSince(t: number): Promise<void> {
    while (this.lastStarted < t) {
      const running = this.inFlight;
      if (running && running.started >= t) return running.done;
      if (running) await running.done.catch(() => {});
      else await this.refresh();
    }
  }

  /**
   * Polls now unless the last finished poll started less than `maxAgeMs` ago
   * (the cache reads model digests through it); concurrent calls share one
   * poll.
   */
  async fresh(maxAgeMs: number): Promise<void> {
    await this.freshSince(Date.now() - maxAgeMs);
  }

  /**
   * Whether any host has the model installed, by canonical name, as of the
   * last poll: a host that is down counts with what it last reported (its
   * jobs wait for it or fail over; the name is not wrong). `undefined` when
   * no host has ever answered /api/tags: nobody can say.
   */
  isKnown(model: string): boolean | undefined {
    const key = canonicalModelName(model);
    let answered = false;
    for (const h of this.hosts) {
      if (!h.tags) continue;
      answered = true;
      if (h.tags.has(key)) return true;
    }
    return answered ? false : undefined;
  }

  /**
   * The one place a model name becomes a Prometheus label: its canonical
   * name when some host has it installed, otherwise `other`. Labels are
   * thereby bounded by what the hosts have, whatever names requests carry.
   */
  modelLabel(model: string): string {
    return this.isKnown(model) ? canonicalModelName(model) : 'other';
  }

  /**
   * The model's digest for cache keys, from hosts that are not down: if they
   * disagree (a rebuilt model on one host), there is no single answer and it
   * is `undefined`, as it is for a model no host has.
   */
  digest(model: string): string | undefined {
    const key = canonicalModelName(model);
    let found: string | undefined;
    for (const h of this.hosts) {
      if (h.up === false) continue;
      const d = h.tags?.get(key)?.digest;
      if (!d) continue;
      if (found !== undefined && found !== d) return undefined;
      found = d;
    }
    return found;
  }

  onTransition(fn: (t: HostTransition) => void): () => void {
    this.transitionListeners.add(fn);
    return () => this.transitionListeners.delete(fn);
  }

  onUpdate(fn: (hosts: OllamaHostStatus[]) => void): () => void {
    this.updateListeners.add(fn);
    return () => this.updateListeners.delete(fn);
  }

  isUp(host: string): boolean | undefined {
    return this.find(host)?.up ?? undefined;
  }

  isInstalled(host: string, model: string): boolean | undefined {
    const tags = this.find(host)?.tags;
    return tags ? tags.has(canonicalModelName(model)) : undefined;
  }

  isLoaded(host: string, model: string): boolean | undefined {
    const h = this.find(host);
    if (!h?.ps) return undefined;
    return h.up !== false && h.ps.has(canonicalModelName(model));
  }

  hostStatus(): OllamaHostStatus[] {
    return this.hosts.map((h) => ({
      host: h.url,
      up: h.up,
      version: h.version,
      checkedAt: h.checkedAt,
      since: h.since,
      error: h.error,
      installed: [...(h.tags?.keys() ?? [])].sort(),
      loaded: [...(h.ps?.keys() ?? [])].sort(),
    }));
  }

  /** Availability of `models` (always listed, even when installed nowhere) and of every model any host has. */
  availability(models: readonly string[] = []): ModelAvailability[] {
    const names = new Set(models.map(canonicalModelName));
    for (const h of this.hosts) for (const n of [...(h.tags?.keys() ?? []), ...(h.ps?.keys() ?? [])]) names.add(n);
    return [...names].sort().map((model) => this.model(model));
  }

  model(name: string): ModelAvailability {
    const model = canonicalModelName(name);
    const hosts = this.hosts.map((h): HostModelStatus => {
      const tag = h.tags?.get(model);
      const ps = h.up === false ? undefined : h.ps?.get(model);
      return {
        host: h.url,
        installed: tag !== undefined,
        loaded: ps !== undefined,
        digest: tag?.digest ?? ps?.digest ?? null,
        diskBytes: tag?.size ?? null,
        memoryBytes: ps?.size ?? null,
        vramBytes: ps?.vram ?? null,
        expiresAt: ps?.expiresAt ?? null,
      };
    });
    const live = hosts.filter((_, i) => this.hosts[i]!.up !== false);
    return { model, installed: live.some((h) => h.installed), loaded: live.some((h) => h.loaded), hosts };
  }

  report(models: readonly string[] = []): ModelStatusReport {
    return { hosts: this.hostStatus(), models: this.availability(models) };
  }

  private find(host: string): HostState | undefined {
    return this.hosts.find((h) => h.url === host);
  }

  private async tick(): Promise<void> {
    await this.refresh();
    if (!this.running) return;
    this.timer = setTimeout(() => void this.tick(), this.opts.intervalMs);
    this.timer.unref();
  }

  private async pollAll(): Promise<void> {
    const transitions: HostTransition[] = [];
    await Promise.all(
      this.hosts.map(async (h) => {
        const t = await this.poll(h);
        if (t) transitions.push(t);
      }),
    );
    const snapshot = this.hostStatus();
    for (const fn of this.updateListeners) safely(() => fn(snapshot));
    for (const t of transitions) for (const fn of this.transitionListeners) safely(() => fn(t));
  }

  private async poll(h: HostState): Promise<HostTransition | undefined> {
    const call = <T>(path: string) =>
      h.transport.json<T>('GET', path, undefined, { timeoutMs: this.opts.timeoutMs, connectTimeoutMs: this.opts.connectTimeoutMs });
    const [version, tags, ps] = await Promise.allSettled([
      call<{ version: string }>('/api/version'),
      call<TagsResponse>('/api/tags'),
      call<PsResponse>('/api/ps'),
    ]);
    const now = new Date().toISOString();
    h.checkedAt = now;
    const before = h.up;
    if (version.status === 'fulfilled') {
      h.failures = 0;
      h.up = true;
      h.version = version.value.version;
      h.error = null;
    } else {
      h.failures += 1;
      h.error = version.reason instanceof Error ? version.reason.message : String(version.reason);
      if (h.failures >= this.opts.downAfter || h.up === null) h.up = false;
    }
    if (tags.status === 'fulfilled') {
      h.tags = new Map(
        (tags.value.models ?? []).flatMap((m) => {
          const name = m.name ?? m.model;
          return name ? [[canonicalModelName(name), { digest: m.digest ?? '', size: m.size ?? 0 }] as const] : [];
        }),
      );
    }
    if (ps.status === 'fulfilled') {
      h.ps = new Map(
        (ps.value.models ?? []).flatMap((m) => {
          const name = m.name ?? m.model;
          return name
            ? [[canonicalModelName(name), { size: m.size ?? 0, vram: m.size_vram ?? 0, expiresAt: m.expires_at ?? null, digest: m.digest ?? '' }] as const]
            : [];
        }),
      );
    } else if (h.up === false) {
      h.ps = new Map();
    }
    if (h.up !== before) h.since = now;
    return before !== null && h.up !== before ? { host: h.url, up: h.up!, at: now } : undefined;
  }
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    /* a listener's bug must not stop polling */
  }
}

/** The gauges `observeOllamaStatus` sets; createApiMetrics has them. */
export interface StatusGauges {
  ollamaUp: Gauge<'host'>;
  ollamaLoadedModels: Gauge<'host'>;
  ollamaModelMemory: Gauge<'host' | 'model' | 'kind'>;
}

/** Mirrors a poll into Prometheus: up per host, loaded models per host, memory per loaded model (kind: total | vram). */
export function observeOllamaStatus(m: StatusGauges, status: OllamaStatus): void {
  m.ollamaModelMemory.reset();
  for (const h of status.hostStatus()) {
    if (h.up !== null) m.ollamaUp.set({ host: h.host }, h.up ? 1 : 0);
    m.ollamaLoadedModels.set({ host: h.host }, h.up ? h.loaded.length : 0);
  }
  for (const a of status.availability()) {
    for (const h of a.hosts) {
      if (!h.loaded) continue;
      const model = status.modelLabel(a.model);
      m.ollamaModelMemory.set({ host: h.host, model, kind: 'total' }, h.memoryBytes ?? 0);
      m.ollamaModelMemory.set({ host: h.host, model, kind: 'vram' }, h.vramBytes ?? 0);
    }
  }
}
