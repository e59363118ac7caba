/** Retry timing: exponential backoff with full jitter, Retry-After honoured, and sleeps an AbortSignal can end. */
import { abortError } from '../errors.ts';

export interface RetryOptions {
  /** Retries after the first try (so `retries + 1` attempts at most). @defaultValue 3 */
  retries?: number;
  /** The first backoff step. @defaultValue 300 ms */
  baseDelayMs?: number;
  /** No backoff step is longer than this. @defaultValue 10 000 ms */
  maxDelayMs?: number;
  /** A Retry-After longer than this is not waited for: the error is thrown instead. @defaultValue 60 000 ms */
  maxRetryAfterMs?: number;
}

export const defaultRetry: Required<RetryOptions> = { retries: 3, baseDelayMs: 300, maxDelayMs: 10_000, maxRetryAfterMs: 60_000 };

/**
 * The wait before retry number `n` (1-based): a uniformly random delay in
 * [0, min(max, base · 2^(n-1))] ("full jitter"), so clients that failed
 * together do not come back together. A server's Retry-After is a floor.
 */
export function backoffDelay(n: number, opts: Required<RetryOptions>, retryAfterMs?: number, random: () => number = Math.random): number {
  const ceiling = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** (n - 1));
  const jittered = Math.round(random() * ceiling);
  return retryAfterMs === undefined ? jittered : retryAfterMs + Math.round(random() * Math.min(1000, ceiling));
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Resolves after `ms`, or rejects with ABORTED as soon as `signal` fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const done = () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    };
    const timer = setTimeout(done, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
