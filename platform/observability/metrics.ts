/**
 * Prometheus metrics. Every process has its own registry and serves it
 * itself: the API on its /metrics, each worker process on its ops port
 * (workers/runtime/ops-server.ts). Prometheus scrapes every process and tells
 * them apart by its `job` and `instance` labels; nothing is merged in Redis,
 * so counters never jump when a process exits and gauges never add up across
 * processes by accident.
 *
 * Naming: base units (`_seconds`, `_bytes`), `_total` on counters, and the
 * default Node metrics under their standard names (`process_*`, `nodejs_*`)
 * so stock dashboards work. Label values are bounded: hosts come from config,
 * kinds and queues from the contracts, and a model name only labels a series
 * when it is an installed model (`modelLabel` in the worker runtime).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The states of an Ollama host's circuit breaker; each is its own series (1 for the current one). */
export const breakerStates = ['closed', 'half_open', 'open'] as const;

const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/**
 * Node's default metrics, with the event-loop delay sampled every 100 ms
 * rather than prom-client's 10: an idle process wakes 10 times a second for
 * it instead of 100 (on a machine whose cores Ollama keeps busy, every
 * wake-up preempts a generating thread). Stalls shorter than 100 ms are
 * caught less often; the long ones the lag alerts are for still show.
 */
const defaultMetrics = (registry: Registry) => collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });

export function createWorkerMetrics(registry = new Registry()) {
  defaultMetrics(registry);
  return {
    registry,
    jobDuration: new Histogram({
      name: 'parley_job_duration_seconds',
      help: 'Handler run time per kind and outcome',
      labelNames: ['kind', 'outcome'],
      buckets: latencyBuckets,
      registers: [registry],
    }),
    queueWait: new Histogram({
      name: 'parley_job_queue_wait_seconds',
      help: 'Time from enqueue to handler start, per kind and model',
      labelNames: ['kind', 'model'],
      buckets: latencyBuckets,
      registers: [registry],
    }),
    ttft: new Histogram({
      name: 'parley_llm_time_to_first_token_seconds',
      help: 'Time from request to first streamed token',
      labelNames: ['model'],
      buckets: latencyBuckets,
      registers: [registry],
    }),
    tokensPerSecond: new Histogram({
      name: 'parley_llm_tokens_per_second',
      help: 'Generation speed of completed streams',
      labelNames: ['model'],
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      registers: [registry],
    }),
    tokens: new Counter({ name: 'parley_llm_tokens_total', help: 'Tokens consumed', labelNames: ['model', 'direction'], registers: [registry] }),
    active: new Gauge({ name: 'parley_jobs_active', help: 'Jobs running now, per queue', labelNames: ['queue'], registers: [registry] }),
    outcomes: new Counter({
      name: 'parley_jobs_finished_total',
      help: 'Jobs reaching a terminal state or a retry',
      labelNames: ['kind', 'outcome'],
      registers: [registry],
    }),
    /** kind: chat | embed (embed counts texts); outcome: hit | miss | bypass | skip (digest unknown) | error (Redis). See docs/caching.md. */
    cacheRequests: new Counter({
      name: 'parley_cache_requests_total',
      help: 'Response cache lookups, by kind and outcome',
      labelNames: ['kind', 'outcome'],
      registers: [registry],
    }),
    /** The adaptive (AIMD) concurrency limit this process applies to each Ollama host. */
    ollamaConcurrencyLimit: new Gauge({
      name: 'parley_ollama_concurrency_limit',
      help: 'Current adaptive concurrency limit per Ollama host',
      labelNames: ['host'],
      registers: [registry],
    }),
    ollamaInFlight: new Gauge({
      name: 'parley_ollama_requests_in_flight',
      help: 'Requests in flight per Ollama host',
      labelNames: ['host'],
      registers: [registry],
    }),
    ollamaWaiting: new Gauge({
      name: 'parley_ollama_requests_waiting',
      help: 'Requests waiting inside this process for an Ollama slot',
      registers: [registry],
    }),
    /** One series per host and state (closed, half_open, open): 1 for the state the breaker is in, 0 for the others. */
    ollamaBreakerState: new Gauge({
      name: 'parley_ollama_breaker_state',
      help: 'Circuit breaker per Ollama host: 1 for its current state',
      labelNames: ['host', 'state'],
      registers: [registry],
    }),
    /** BullMQ found a job whose lock expired (its worker died or hung); it goes back to wait, or fails after maxStalledCount. */
    stalled: new Counter({
      name: 'parley_jobs_stalled_total',
      help: 'Active jobs found stalled by this process, per queue',
      labelNames: ['queue'],
      registers: [registry],
    }),
    /** reason: the fault kind (refused, reset, connect-timeout, http, protocol) or overload (503/429). */
    ollamaRetries: new Counter({
      name: 'parley_ollama_retries_total',
      help: 'Ollama requests retried before their first token, by host and reason',
      labelNames: ['host', 'reason'],
      registers: [registry],
    }),
    ollamaLimitChanges: new Counter({
      name: 'parley_ollama_limit_changes_total',
      help: 'Adaptive concurrency changes, by host and reason (increase, overload, latency)',
      labelNames: ['host', 'reason'],
      registers: [registry],
    }),
  };
}
export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;

export function createApiMetrics(registry = new Registry()) {
  defaultMetrics(registry);
  return {
    registry,
    httpDuration: new Histogram({
      name: 'parley_http_request_duration_seconds',
      help: 'HTTP request latency',
      labelNames: ['method', 'route', 'status'],
      buckets: latencyBuckets,
      registers: [registry],
    }),
    queueDepth: new Gauge({ name: 'parley_queue_jobs', help: 'Jobs per queue and BullMQ state', labelNames: ['queue', 'state'], registers: [registry] }),
    submitted: new Counter({ name: 'parley_jobs_submitted_total', help: 'Jobs accepted by the API', labelNames: ['kind', 'priority'], registers: [registry] }),
    sockets: new Gauge({
      name: 'parley_realtime_connections',
      help: 'Open Socket.IO connections and SSE streams',
      labelNames: ['transport'],
      registers: [registry],
    }),
    /** kind: bearer (access token or API key refused), password (failed login), refresh (refused or reused refresh token). */
    authFailures: new Counter({
      name: 'parley_auth_failures_total',
      help: 'Refused credentials, by kind and reason',
      labelNames: ['kind', 'reason'],
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: 'parley_rate_limited_total',
      help: 'Requests answered 429 by a rate limiter',
      labelNames: ['limiter'],
      registers: [registry],
    }),
    /** status: 401, 403 or 429; family: token, auth, admin or board. Every denial, before the audit log aggregates them. */
    /** Writes through the queue board (each also an audit event), by method and outcome. */
    boardActions: new Counter({
      name: 'parley_board_actions_total',
      help: 'Admin actions taken through the queue board, by method and outcome',
      labelNames: ['method', 'outcome'],
      registers: [registry],
    }),
    authDenials: new Counter({
      name: 'parley_auth_denials_total',
      help: 'Denied requests on auth and admin routes and the queue board, by status and family',
      labelNames: ['status', 'family'],
      registers: [registry],
    }),
    /** Successful token grants, by grant (password is a login; refresh_token, client_credentials). */
    tokensIssued: new Counter({
      name: 'parley_auth_tokens_issued_total',
      help: 'Access tokens issued, by grant type',
      labelNames: ['grant'],
      registers: [registry],
    }),
    /** Set at scrape time from BullMQ (parley_queue_jobs) and Postgres (the rest); every API process reports the same values. */
    queueOldestAge: new Gauge({
      name: 'parley_queue_oldest_job_age_seconds',
      help: 'Age of the oldest queued (not yet started) job per queue, from the record; 0 when none',
      labelNames: ['queue'],
      registers: [registry],
    }),
    redisMemoryUsed: new Gauge({
      name: 'parley_redis_memory_used_bytes',
      help: 'Memory Redis uses (INFO memory used_memory, summed over cluster masters)',
      registers: [registry],
    }),
    redisMemoryMax: new Gauge({
      name: 'parley_redis_memory_max_bytes',
      help: 'Redis maxmemory (0: no limit), summed over cluster masters',
      registers: [registry],
    }),
    discussionRooms: new Gauge({ name: 'parley_discussion_rooms', help: 'Discussion rooms per status', labelNames: ['status'], registers: [registry] }),
    /** The API process's stream hub: streams it relays now (job and room streams). */
    watchedStreams: new Gauge({ name: 'parley_realtime_watched_streams', help: 'Live streams this API process relays', registers: [registry] }),
    /** From the status poller (platform/ollama/status.ts), updated every poll. */
    ollamaUp: new Gauge({ name: 'parley_ollama_up', help: 'Ollama host answering /api/version (1) or not (0)', labelNames: ['host'], registers: [registry] }),
    ollamaLoadedModels: new Gauge({
      name: 'parley_ollama_loaded_models',
      help: 'Models loaded per Ollama host (/api/ps)',
      labelNames: ['host'],
      registers: [registry],
    }),
    /** kind: total (size in /api/ps) or vram (size_vram). */
    ollamaModelMemory: new Gauge({
      name: 'parley_ollama_model_memory_bytes',
      help: 'Memory of each loaded model per Ollama host',
      labelNames: ['host', 'model', 'kind'],
      registers: [registry],
    }),
  };
}
export type ApiMetrics = ReturnType<typeof createApiMetrics>;

/**
 * Counters from 0 for the label values a process knows when it starts. A series that first appears
 * at 1 reads as no increase to `increase()` and `rate()`: an alert on the first stall after a restart
 * never fired, and panels said "No data" where the answer is 0.
 */
export function primeWorkerCounters(m: WorkerMetrics, known: { queues: readonly string[]; kinds: readonly string[]; hosts: readonly string[] }): void {
  for (const queue of known.queues) m.stalled.inc({ queue }, 0);
  for (const kind of known.kinds) for (const outcome of jobOutcomes) m.outcomes.inc({ kind, outcome }, 0);
  for (const host of known.hosts) for (const reason of retryReasons) m.ollamaRetries.inc({ host, reason }, 0);
}

/** The API's counterpart: the rate limiters by name. */
export function primeApiCounters(m: ApiMetrics, limiters: readonly string[]): void {
  for (const limiter of limiters) m.rateLimited.inc({ limiter }, 0);
}

/** `parley_jobs_finished_total`'s outcomes (workers/runtime/host.ts). */
const jobOutcomes = ['completed', 'failed', 'cancelled', 'retried', 'rejected', 'superseded'] as const;
/** `parley_ollama_retries_total`'s reasons: the fault kinds retried as transient (platform/ollama/retry.ts), or overload. */
const retryReasons = ['refused', 'reset', 'connect-timeout', 'protocol', 'breaker-open', 'http', 'overload'] as const;
