/**
 * Chooses the Ollama host for each request and makes requests wait for a
 * slot inside our process.
 *
 * A request asks for a lease (`acquire`). Waiting requests form one FIFO
 * queue for all hosts; whenever a slot frees, a limit grows or a breaker
 * changes, the queue is pumped: the head gets the best host that has a free
 * slot and whose breaker lets a request through. Best means, in order:
 *   1. not a host this request just failed on (a soft preference);
 *   2. the model is installed there (from the status view, when known);
 *   3. the model is already loaded there (no load time, no eviction);
 *   4. the host was up at the last status poll;
 *   5. the lowest load (in flight / current limit);
 *   6. configuration order.
 * When no host can take requests now or after a pending half-open probe
 * (every breaker open), waiting and new requests fail fast with a
 * `breaker-open` fault.
 */
import type { AimdLimiter, Ticket } from './limiter.ts';
import type { CircuitBreaker } from './breaker.ts';
import type { HostTransport } from './transport.ts';
import { UpstreamFault } from './transport.ts';

export interface UpstreamHost {
  readonly url: string;
  readonly transport: HostTransport;
  readonly breaker: CircuitBreaker;
  readonly limiter: AimdLimiter;
}

/** What the status poller knows; `undefined` means "no information". */
export interface RoutingView {
  isUp(host: string): boolean | undefined;
  isInstalled(host: string, model: string): boolean | undefined;
  isLoaded(host: string, model: string): boolean | undefined;
}

/** A granted slot on one host. Exactly one of `release` (idempotent) ends it. */
export interface Lease {
  readonly host: UpstreamHost;
  readonly ticket: Ticket;
  /** This request is the half-open breaker's probe. */
  readonly probe: boolean;
  /** The model was known to be loaded on the host when the lease was granted. */
  readonly warm: boolean | undefined;
  release(): void;
}

interface Waiter {
  model: string;
  avoid: ReadonlySet<string>;
  resolve(l: Lease): void;
  reject(err: unknown): void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class HostRouter {
  private readonly queue: Waiter[] = [];
  private view: RoutingView | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;

  constructor(readonly hosts: readonly UpstreamHost[]) {}

  /** Plugs in the status poller's view (routing works without it, by load alone). */
  useView(view: RoutingView): void {
    this.view = view;
  }

  /** Requests waiting for a slot, all hosts. */
  get waiting(): number {
    return this.queue.length;
  }

  acquire(model: string, signal?: AbortSignal, avoid: ReadonlySet<string> = new Set()): Promise<Lease> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<Lease>((resolve, reject) => {
      const w: Waiter = { model, avoid, resolve, reject, signal };
      if (signal) {
        w.onAbort = () => {
          const i = this.queue.indexOf(w);
          if (i >= 0) this.queue.splice(i, 1);
          reject(signal.reason);
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.queue.push(w);
      this.pump();
    });
  }

  /** Hosts ranked for a model, best first, ignoring capacity: used for non-limited calls (version, tags). */
  rank(model: string | undefined, avoid: ReadonlySet<string> = new Set()): UpstreamHost[] {
    return this.hosts
      .filter((h) => h.breaker.mayRecover())
      .map((h, i) => ({ h, i, key: this.score(h, model, avoid) }))
      .sort((a, b) => compare(a.key, b.key) || a.i - b.i)
      .map((x) => x.h);
  }

  /** Re-evaluates the queue; call after anything that may free capacity or change breakers. */
  pump(): void {
    while (this.queue.length) {
      if (!this.hosts.some((h) => h.breaker.mayRecover())) {
        const next = Math.min(...this.hosts.map((h) => h.breaker.retryAt ?? Infinity));
        const fault = new UpstreamFault(
          'breaker-open',
          this.hosts.map((h) => h.url).join(','),
          `ollama: circuit open for every host; next probe in ${Math.max(0, next - Date.now())} ms`,
        );
        for (const w of this.queue.splice(0)) this.settle(w).reject(fault);
        return;
      }
      const head = this.queue[0]!;
      const candidates = this.hosts.filter((h) => h.limiter.hasCapacity() && h.breaker.canSend());
      if (!candidates.length) return this.wakeAtCooldown();
      const best = candidates
        .map((h) => ({ h, i: this.hosts.indexOf(h), key: this.score(h, head.model, head.avoid) }))
        .sort((a, b) => compare(a.key, b.key) || a.i - b.i)[0]!.h;
      this.queue.shift();
      this.settle(head).resolve(this.grant(best, head.model));
    }
  }

  /** Requests are waiting and some host is open: look again when its cool-down ends (it may take a probe then). */
  private wakeAtCooldown(): void {
    const at = Math.min(...this.hosts.map((h) => h.breaker.retryAt ?? Infinity));
    if (at === Infinity || this.wakeTimer) return;
    this.wakeTimer = setTimeout(
      () => {
        this.wakeTimer = undefined;
        this.pump();
      },
      Math.max(0, at - Date.now()) + 1,
    );
    this.wakeTimer.unref();
  }

  private grant(h: UpstreamHost, model: string): Lease {
    const ticket = h.limiter.acquire();
    const probe = h.breaker.dispatched();
    let released = false;
    return {
      host: h,
      ticket,
      probe,
      warm: this.view?.isLoaded(h.url, model),
      release: () => {
        if (released) return;
        released = true;
        h.limiter.release();
        // Free capacity on the next tick: the releasing request may be about to retry and queue again.
        queueMicrotask(() => this.pump());
      },
    };
  }

  private settle(w: Waiter): Waiter {
    if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
    return w;
  }

  /** Lower is better, compared element by element. */
  private score(h: UpstreamHost, model: string | undefined, avoid: ReadonlySet<string>): number[] {
    const v = this.view;
    const installed = model && v ? v.isInstalled(h.url, model) : undefined;
    const loaded = model && v ? v.isLoaded(h.url, model) : undefined;
    const up = v?.isUp(h.url);
    return [avoid.has(h.url) ? 1 : 0, installed === false ? 1 : 0, loaded === true ? 0 : 1, up === false ? 1 : 0, h.limiter.load];
  }
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return 0;
}
