/**
 * Adaptive concurrency for one Ollama host: AIMD (additive increase,
 * multiplicative decrease), the rule TCP uses for its congestion window.
 *
 * - Increase: every request that gets its first token without a congestion
 *   signal, while the limit is actually in use, adds `increase / limit`, so the
 *   limit grows by about `increase` per limit's worth of successes.
 * - Decrease: a 503/429 (Ollama's queue is full) multiplies the limit by
 *   `overloadFactor`; a time to first token above `latencyRatio` × the
 *   model's moving baseline (and at least `latencyMinMs` above it) multiplies
 *   it by `latencyFactor`. One congestion episode decreases once: signals
 *   from requests that were dispatched before the last decrease are ignored,
 *   or a burst of N rejected requests would divide the limit 2^N times.
 *
 * The limiter only keeps the numbers. Waiting for a slot happens in the
 * router, inside our process: a request that cannot be sent waits there (and
 * its job waits in our prioritised BullMQ queue behind it), never in Ollama's
 * FIFO. Each process has its own limiters; several worker processes behave
 * like several TCP flows sharing a link, each backing off on its own signals.
 */
export interface AimdOptions {
  /** @defaultValue 4 (matches Ollama's default OLLAMA_NUM_PARALLEL on most machines) */
  initial: number;
  /** Never below this, so work always progresses. @defaultValue 1 */
  min: number;
  /** @defaultValue 16 */
  max: number;
  /** @defaultValue 1 */
  increase: number;
  /** @defaultValue 0.5 */
  overloadFactor: number;
  /** @defaultValue 0.8 */
  latencyFactor: number;
  /** TTFT above this multiple of the baseline is a congestion signal. @defaultValue 3 */
  latencyRatio: number;
  /** ...and only when it exceeds the baseline by at least this much (small absolute jitter is not congestion). @defaultValue 500 ms */
  latencyMinMs: number;
  /** Samples per model before its baseline is trusted. @defaultValue 5 */
  warmupSamples: number;
  /** EWMA weight of a new TTFT sample in the baseline. @defaultValue 0.1 */
  baselineAlpha: number;
}

export const defaultAimdOptions: AimdOptions = {
  initial: 4,
  min: 1,
  max: 16,
  increase: 1,
  overloadFactor: 0.5,
  latencyFactor: 0.8,
  latencyRatio: 3,
  latencyMinMs: 500,
  warmupSamples: 5,
  baselineAlpha: 0.1,
};

/** A dispatched request, as the limiter tracks it. */
export interface Ticket {
  /** Value of the limiter's episode counter when the request was sent. */
  readonly episode: number;
}

export type LimitChange = { limit: number; reason: 'increase' | 'overload' | 'latency' };

export class AimdLimiter {
  private value: number;
  private running = 0;
  private episodeCounter = 0;
  private readonly baselines = new Map<string, { ms: number; n: number }>();

  constructor(
    readonly opts: AimdOptions,
    private readonly onChange?: (c: LimitChange) => void,
  ) {
    this.value = clamp(opts.initial, opts.min, opts.max);
  }

  /** The current limit, fractional (the integer part is what is enforced). */
  get limit(): number {
    return this.value;
  }

  /** Requests allowed in flight now. */
  get capacity(): number {
    return Math.max(this.opts.min, Math.floor(this.value));
  }

  get inFlight(): number {
    return this.running;
  }

  /** In-flight requests as a share of capacity; the router's "load". */
  get load(): number {
    return this.running / this.capacity;
  }

  hasCapacity(): boolean {
    return this.running < this.capacity;
  }

  acquire(): Ticket {
    this.running += 1;
    return { episode: this.episodeCounter };
  }

  release(): void {
    this.running = Math.max(0, this.running - 1);
  }

  /** Ollama accepted the request and answered in time. */
  success(): void {
    // Growing an unused limit would only make the next burst larger than anything measured.
    if (this.running < this.capacity - 1) return;
    this.set(this.value + this.opts.increase / this.value, 'increase');
  }

  /** Ollama answered 503/429: its queue is full. */
  overload(t: Ticket): void {
    this.decrease(t, this.opts.overloadFactor, 'overload');
  }

  /**
   * A first token arrived after `ms`. Feeds the model's baseline and, when
   * the sample is far above it, counts as congestion. Returns whether it did.
   * `cold`: the model was not loaded when the request was sent; its load time
   * says nothing about congestion, so the sample is ignored.
   */
  firstToken(t: Ticket, model: string, ms: number, cold = false): boolean {
    if (cold) return false;
    const b = this.baselines.get(model);
    if (!b) {
      this.baselines.set(model, { ms, n: 1 });
      return false;
    }
    const congested = b.n >= this.opts.warmupSamples && ms > b.ms * this.opts.latencyRatio && ms - b.ms >= this.opts.latencyMinMs;
    b.ms += this.opts.baselineAlpha * (ms - b.ms);
    b.n += 1;
    if (congested) this.decrease(t, this.opts.latencyFactor, 'latency');
    return congested;
  }

  /** No first token within the first-token timeout: the strongest latency signal (the sample itself is not a baseline value). */
  stalled(t: Ticket): void {
    this.decrease(t, this.opts.latencyFactor, 'latency');
  }

  /** The moving TTFT baseline of a model, if any. */
  baseline(model: string): number | undefined {
    return this.baselines.get(model)?.ms;
  }

  private decrease(t: Ticket, factor: number, reason: LimitChange['reason']): void {
    if (t.episode < this.episodeCounter) return;
    this.episodeCounter += 1;
    this.set(this.value * factor, reason);
  }

  private set(v: number, reason: LimitChange['reason']): void {
    const next = clamp(v, this.opts.min, this.opts.max);
    if (next === this.value) return;
    this.value = next;
    this.onChange?.({ limit: next, reason });
  }
}

function clamp(v: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, v));
}
