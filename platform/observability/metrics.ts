/**
 * Prometheus metrics. Each process has its own registry; worker processes
 * publish theirs to Redis every few seconds (hash keys(prefix) "metrics",
 * field = worker id, value = prom-client's JSON form, stale after 30 s) and
 * the API's /metrics merges them with its own, so one scrape sees the whole
 * platform. Workers can also serve their own registry on a port.
 */
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Redis } from 'ioredis';

const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export function createWorkerMetrics(registry = new Registry()) {
  collectDefaultMetrics({ register: registry, prefix: 'parley_worker_' });
  return {
    registry,
    jobDuration: new Histogram({ name: 'parley_job_duration_seconds', help: 'Handler run time per kind and outcome', labelNames: ['kind', 'outcome'], buckets: latencyBuckets, registers: [registry] }),
    queueWait: new Histogram({ name: 'parley_job_queue_wait_seconds', help: 'Time from enqueue to handler start, per kind and model', labelNames: ['kind', 'model'], buckets: latencyBuckets, registers: [registry] }),
    ttft: new Histogram({ name: 'parley_llm_time_to_first_token_seconds', help: 'Time from request to first streamed token', labelNames: ['model'], buckets: latencyBuckets, registers: [registry] }),
    tokensPerSecond: new Histogram({ name: 'parley_llm_tokens_per_second', help: 'Generation speed of completed streams', labelNames: ['model'], buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000], registers: [registry] }),
    tokens: new Counter({ name: 'parley_llm_tokens_total', help: 'Tokens consumed', labelNames: ['model', 'direction'], registers: [registry] }),
    active: new Gauge({ name: 'parley_jobs_active', help: 'Jobs running now, per queue', labelNames: ['queue'], registers: [registry] }),
    outcomes: new Counter({ name: 'parley_jobs_finished_total', help: 'Jobs reaching a terminal state or a retry', labelNames: ['kind', 'outcome'], registers: [registry] }),
    /** kind: chat | embed (embed counts texts); outcome: hit | miss | bypass | skip (digest unknown) | error (Redis). See docs/caching.md. */
    cacheRequests: new Counter({ name: 'parley_cache_requests_total', help: 'Response cache lookups, by kind and outcome', labelNames: ['kind', 'outcome'], registers: [registry] }),
    /** The adaptive (AIMD) concurrency limit this process applies to each Ollama host. */
    ollamaConcurrencyLimit: new Gauge({ name: 'parley_ollama_concurrency_limit', help: 'Current adaptive concurrency limit per Ollama host', labelNames: ['host'], registers: [registry] }),
    ollamaInFlight: new Gauge({ name: 'parley_ollama_in_flight', help: 'Requests in flight per Ollama host', labelNames: ['host'], registers: [registry] }),
    ollamaWaiting: new Gauge({ name: 'parley_ollama_waiting', help: 'Requests waiting inside this process for an Ollama slot', registers: [registry] }),
    /** 0 closed, 1 half-open, 2 open. */
    ollamaBreakerState: new Gauge({ name: 'parley_ollama_breaker_state', help: 'Circuit breaker per Ollama host: 0 closed, 1 half-open, 2 open', labelNames: ['host'], registers: [registry] }),
    /** reason: the fault kind (refused, reset, connect-timeout, http, protocol) or overload (503/429). */
    ollamaRetries: new Counter({ name: 'parley_ollama_retries_total', help: 'Ollama requests retried before their first token, by host and reason', labelNames: ['host', 'reason'], registers: [registry] }),
    ollamaLimitChanges: new Counter({ name: 'parley_ollama_limit_changes_total', help: 'Adaptive concurrency changes, by host and reason (increase, overload, latency)', labelNames: ['host', 'reason'], registers: [registry] }),
  };
}
export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;

export function createApiMetrics(registry = new Registry()) {
  collectDefaultMetrics({ register: registry, prefix: 'parley_api_' });
  return {
    registry,
    httpDuration: new Histogram({ name: 'parley_http_request_duration_seconds', help: 'HTTP request latency', labelNames: ['method', 'route', 'status'], buckets: latencyBuckets, registers: [registry] }),
    queueDepth: new Gauge({ name: 'parley_queue_jobs', help: 'Jobs per queue and BullMQ state', labelNames: ['queue', 'state'], registers: [registry] }),
    submitted: new Counter({ name: 'parley_jobs_submitted_total', help: 'Jobs accepted by the API', labelNames: ['kind', 'priority'], registers: [registry] }),
    sockets: new Gauge({ name: 'parley_realtime_connections', help: 'Open Socket.IO connections and SSE streams', labelNames: ['transport'], registers: [registry] }),
    /** kind: bearer (access token or API key refused), password (failed login), refresh (refused or reused refresh token). */
    authFailures: new Counter({ name: 'parley_auth_failures_total', help: 'Refused credentials, by kind and reason', labelNames: ['kind', 'reason'], registers: [registry] }),
    rateLimited: new Counter({ name: 'parley_rate_limited_total', help: 'Requests answered 429 by a rate limiter', labelNames: ['limiter'], registers: [registry] }),
    /** status: 401, 403 or 429; family: token, auth, admin or board. Every denial, before the audit log aggregates them. */
    /** Writes through the queue board (each also an audit event), by method and outcome. */
    boardActions: new Counter({ name: 'parley_board_actions_total', help: 'Admin actions taken through the queue board, by method and outcome', labelNames: ['method', 'outcome'], registers: [registry] }),
    authDenials: new Counter({ name: 'parley_auth_denials_total', help: 'Denied requests on auth and admin routes and the queue board, by status and family', labelNames: ['status', 'family'], registers: [registry] }),
    /** From the status poller (platform/ollama/status.ts), updated every poll. */
    ollamaUp: new Gauge({ name: 'parley_ollama_up', help: 'Ollama host answering /api/version (1) or not (0)', labelNames: ['host'], registers: [registry] }),
    ollamaLoadedModels: new Gauge({ name: 'parley_ollama_loaded_models', help: 'Models loaded per Ollama host (/api/ps)', labelNames: ['host'], registers: [registry] }),
    /** kind: total (size in /api/ps) or vram (size_vram). */
    ollamaModelMemory: new Gauge({ name: 'parley_ollama_model_memory_bytes', help: 'Memory of each loaded model per Ollama host', labelNames: ['host', 'model', 'kind'], registers: [registry] }),
  };
}
export type ApiMetrics = ReturnType<typeof createApiMetrics>;

const hashKey = (prefix: string) => `${prefix}:metrics`;

export async function publishMetrics(redis: Redis, prefix: string, workerId: string, registry: Registry): Promise<void> {
  const json = await registry.getMetricsAsJSON();
  await redis.hset(hashKey(prefix), workerId, JSON.stringify({ at: Date.now(), metrics: json }));
}

export async function removePublishedMetrics(redis: Redis, prefix: string, workerId: string): Promise<void> {
  await redis.hdel(hashKey(prefix), workerId);
}

/** The API's own metrics followed by the merged metrics of live worker processes. */
export async function scrape(redis: Redis, prefix: string, own: Registry): Promise<string> {
  const all = await redis.hgetall(hashKey(prefix));
  const fresh: unknown[][] = [];
  for (const [field, value] of Object.entries(all)) {
    const parsed = JSON.parse(value) as { at: number; metrics: unknown[] };
    if (Date.now() - parsed.at < 30_000) fresh.push(parsed.metrics);
    else await redis.hdel(hashKey(prefix), field);
  }
  const merged = fresh.length ? await AggregatorRegistry.aggregate(fresh as never).metrics() : '';
  return `${await own.metrics()}\n${merged}`;
}
