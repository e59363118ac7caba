/**
 * A circuit breaker per Ollama host.
 *
 *   closed ──(N consecutive failures)──▶ open ──(cool-down elapsed)──▶ half-open
 *     ▲                                   ▲                               │
 *     └────────── probe succeeds ─────────┼──────── probe fails ──────────┘
 *
 * - closed: requests flow; failures are counted, any success resets the count.
 * - open: the host gets no requests until `cooldownMs` has passed; callers
 *   fail fast (or are routed to another host).
 * - half-open: exactly one request (the probe) is let through; its outcome
 *   closes the breaker or opens it for another cool-down.
 *
 * What counts as a failure is decided by the client (retry.ts): refused,
 * reset, connect and token timeouts, 5xx other than 503. A 503 or a 4xx
 * proves the host is alive and counts as a success.
 */
export interface BreakerOptions {
  /** Consecutive failures that open the breaker. @defaultValue 5 */
  failureThreshold: number;
  /** Time an open breaker rejects before it lets one probe through. @defaultValue 10 000 ms */
  cooldownMs: number;
}

export const defaultBreakerOptions: BreakerOptions = { failureThreshold: 5, cooldownMs: 10_000 };

export type BreakerState = 'closed' | 'open' | 'half-open';

export class CircuitBreaker {
  private failures = 0;
  private openedAt: number | undefined;
  private probing = false;

  constructor(
    readonly opts: BreakerOptions,
    private readonly onChange?: (state: BreakerState) => void,
    private readonly now: () => number = Date.now,
  ) {}

  get state(): BreakerState {
    if (this.openedAt === undefined) return 'closed';
    return this.now() - this.openedAt >= this.opts.cooldownMs ? 'half-open' : 'open';
  }

  /** Epoch ms at which an open breaker will allow a probe; undefined unless open. */
  get retryAt(): number | undefined {
    return this.state === 'open' ? this.openedAt! + this.opts.cooldownMs : undefined;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  /** True when a request may be sent now (closed, or half-open with no probe in flight). */
  canSend(): boolean {
    const s = this.state;
    return s === 'closed' || (s === 'half-open' && !this.probing);
  }

  /** True when the host may take requests now or after waiting for a probe in flight (not plain open). */
  mayRecover(): boolean {
    return this.state !== 'open';
  }

  /** Call when a request is dispatched; returns true if it is the half-open probe. */
  dispatched(): boolean {
    if (this.state !== 'half-open' || this.probing) return false;
    this.probing = true;
    this.onChange?.('half-open');
    return true;
  }

  success(): void {
    const wasOpen = this.openedAt !== undefined;
    this.failures = 0;
    this.openedAt = undefined;
    this.probing = false;
    if (wasOpen) this.onChange?.('closed');
  }

  failure(): void {
    this.failures += 1;
    const probeFailed = this.probing;
    this.probing = false;
    if (probeFailed || (this.openedAt === undefined && this.failures >= this.opts.failureThreshold)) {
      this.openedAt = this.now();
      this.onChange?.('open');
    }
  }

  /** A probe that ended without a verdict (cancelled by its caller) frees the half-open slot. */
  abandoned(isProbe: boolean): void {
    if (isProbe) this.probing = false;
  }
}
