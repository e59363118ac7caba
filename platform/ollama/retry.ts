/**
 * What a failed upstream attempt means, in one place: may it be retried, does
 * it count against the host's health (breaker), does it signal overload
 * (limiter), and which job error code it becomes if it is final.
 *
 * Retries only ever happen before the first chunk has been handed to the
 * caller (client.ts enforces that); this file only answers "would it be safe
 * and useful to try again?".
 */
import { JobFailure } from '../jobs/index.ts';
import type { JobErrorCode } from '../../shared/index.ts';
import type { UpstreamFault } from './transport.ts';

export interface RetryOptions {
  /** Attempts per request for host faults (refused, reset, connect timeout, 5xx other than 503), the first included. @defaultValue 3 */
  attempts: number;
  /** Backoff cap of the first retry; doubles per retry. @defaultValue 250 ms */
  baseMs: number;
  /** Upper bound of any one backoff. @defaultValue 5 000 ms */
  maxMs: number;
  /**
   * Overload answers (503 "server busy", 429) are retried without a count,
   * because they mean "wait", not "broken": the limiter shrinks and the
   * request waits its turn in our process. This bounds the total time one
   * request spends waiting that way. @defaultValue 300 000 ms
   */
  overloadMaxWaitMs: number;
}

export const defaultRetryOptions: RetryOptions = { attempts: 3, baseMs: 250, maxMs: 5_000, overloadMaxWaitMs: 300_000 };

export type FaultClass =
  /** Ollama is alive but its queue is full: shrink concurrency, wait, retry. Not a health failure. */
  | 'overload'
  /** The host failed (or looks dead): counts against its breaker; retry, preferably elsewhere. */
  | 'transient'
  /** The host failed in a way a retry would only repeat slowly (a timeout): counts against its breaker; final. */
  | 'timeout'
  /** The host answered and refused the request (4xx, or an error about the request's input): the host is healthy; final. */
  | 'rejected';

export function classify(f: UpstreamFault): FaultClass {
  switch (f.kind) {
    case 'http':
      if (f.status === 503 || f.status === 429) return 'overload';
      return (f.status ?? 500) >= 500 ? 'transient' : 'rejected';
    case 'refused':
    case 'reset':
    case 'connect-timeout':
    case 'protocol':
    case 'breaker-open':
      return 'transient';
    case 'first-token-timeout':
    case 'idle-timeout':
      return 'timeout';
    case 'input':
      return 'rejected';
  }
}

/** "Full jitter" exponential backoff: uniform in [0, min(max, base · 2^retry)). `retry` counts from 0. */
export function backoffMs(retry: number, opts: Pick<RetryOptions, 'baseMs' | 'maxMs'>, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(retry, 30)));
}

const codeOf: Record<FaultClass, JobErrorCode> = {
  overload: 'UPSTREAM_UNAVAILABLE',
  transient: 'UPSTREAM_UNAVAILABLE',
  timeout: 'UPSTREAM_TIMEOUT',
  rejected: 'UPSTREAM_REJECTED',
};

/** The job-facing error for a final fault; the fault stays as `cause`. A connect timeout is retried like a refusal but reported as the timeout it is. */
export function toJobFailure(f: UpstreamFault, note?: string): JobFailure {
  return new JobFailure(f.kind === 'connect-timeout' ? 'UPSTREAM_TIMEOUT' : codeOf[classify(f)], note ? `${f.message} (${note})` : f.message, {
    cause: f,
    // An input refusal is the client's own mistake and reaches its owner: it names no internal host.
    details: { ...(f.kind === 'input' ? {} : { host: f.host }), fault: f.kind, ...(f.status === undefined ? {} : { status: f.status }) },
  });
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const done = () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    };
    const timer = setTimeout(done, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
