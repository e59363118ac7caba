/**
 * Configuration: parsed once, with zod, from the environment. Nothing else in
 * the product reads `process.env`; composition roots call `loadConfig()` and
 * pass the result down.
 */
import { isIP } from 'node:net';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { PriorityClass } from '../shared/index.ts';

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');
const csv = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean),
);
const limitClasses = ['admin', 'operator', 'member', 'viewer', 'anonymous'] as const;
/** Requests per window per role, as "member=120,operator=1200"; roles left out keep their default. */
const roleLimits = (defaults: Record<(typeof limitClasses)[number], number>) =>
  z
    .string()
    .default('')
    .transform((spec, ctx) => {
      const out = { ...defaults };
      for (const part of spec
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean)) {
        const [name, value] = part.split('=');
        const n = Number(value);
        if (!(limitClasses as readonly string[]).includes(name ?? '') || !Number.isInteger(n) || n < 1) {
          ctx.addIssue({ code: 'custom', message: `"${part}": expected <${limitClasses.join('|')}>=<positive integer>` });
          return z.NEVER;
        }
        out[name as keyof typeof out] = n;
      }
      return out;
    });

const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

const Env = z.object({
  PARLEY_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: logLevel.default('info'),
  /** Log level of API processes and of worker processes, over LOG_LEVEL, so one environment can set them apart. */
  PARLEY_API_LOG_LEVEL: logLevel.optional(),
  PARLEY_WORKER_LOG_LEVEL: logLevel.optional(),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /**
   * Each worker process serves /healthz, /readyz and /metrics on this port (0: any free port).
   * @defaultValue 9464, on 127.0.0.1: set PARLEY_WORKER_HOST=0.0.0.0 where a scraper or a probe comes from another host.
   */
  PARLEY_WORKER_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  PARLEY_WORKER_HOST: z.string().default('127.0.0.1'),
  /**
   * A static bearer token for Prometheus: accepted by the API's /metrics (besides an operator's
   * credential) and required by the workers' /metrics when set. @defaultValue none
   */
  PARLEY_METRICS_TOKEN: z.string().min(16).optional(),
  /** Unset: the service manager's own instance, on its PARLEY_*_PORT. */
  REDIS_URL: z.string().optional(),
  DATABASE_URL: z.string().optional(),
  /** Postgres password, put into DATABASE_URL when the URL carries none (so the URL needs no secret in it). */
  DATABASE_PASSWORD: z.string().min(1).optional(),
  OLLAMA_HOST: z.string().optional(),
  MONGODB_URL: z.string().optional(),
  /** The ports `npm run services` uses for its own instances; the URLs above default to them. */
  PARLEY_REDIS_PORT: z.coerce.number().int().min(1).max(65535).default(6390),
  PARLEY_PG_PORT: z.coerce.number().int().min(1).max(65535).default(5440),
  PARLEY_OLLAMA_PORT: z.coerce.number().int().min(1).max(65535).default(11500),
  PARLEY_MONGO_PORT: z.coerce.number().int().min(1).max(65535).default(27030),
  PARLEY_CHAT_MODEL: z.string().default('smollm2:135m'),
  PARLEY_EMBED_MODEL: z.string().default('all-minilm'),
  /** Prefix of every Redis key and BullMQ queue; tests give each suite its own. */
  PARLEY_KEY_PREFIX: z
    .string()
    .regex(/^[a-zA-Z0-9_.:-]+$/)
    .default('parley'),
  /**
   * Worker concurrency per queue, e.g. "llm=4,embed=2,code=2,code-batch=1,system=16". `code-batch` is
   * per worker process: one batch at a time embeds fastest against one Ollama (docs/code-search.md), and it
   * bounds what a killed worker's index job redoes. @defaultValue llm=4,embed=2,code=2,code-batch=1,system=32,models=1
   */
  PARLEY_CONCURRENCY: z.string().default(''),
  /**
   * The queues a worker process serves, comma-separated (e.g. "llm" for a pool of LLM workers scaled on
   * its own). @defaultValue every queue
   */
  PARLEY_WORKER_QUEUES: csv.optional(),
  PARLEY_CHUNK_THREADS: z.coerce.number().int().min(1).max(64).optional(),
  /** How long a job's lock lives without renewal; a dead worker's jobs are recovered after about this long. */
  PARLEY_LOCK_MS: z.coerce.number().int().min(1000).default(30_000),
  PARLEY_STALLED_INTERVAL_MS: z.coerce.number().int().min(500).default(15_000),
  /** A queued job older than this is promoted one priority class, so batch work always progresses. */
  PARLEY_AGING_MS: z.coerce.number().int().min(100).default(30_000),
  PARLEY_SWEEP_INTERVAL_MS: z.coerce.number().int().min(100).default(5_000),
  /**
   * While Postgres (or Redis) is down, a worker holds a finished job's outcome and retries its
   * record write this long before giving the job back to the queue. @defaultValue 120 s
   */
  PARLEY_OUTAGE_WAIT_MS: z.coerce.number().int().min(0).default(120_000),
  /** On SIGTERM, active jobs get this long to finish before they are handed back to the queue. */
  PARLEY_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
  /**
   * Failpoints for the chaos suite, honoured only when PARLEY_ENV=test: comma-separated names of
   * places where the process kills itself (SIGKILL), e.g. "accept.after-record" (the API dies
   * between recording a job and handing it to the queue), "message.after-stream" (the API dies
   * between a human message's room-stream entry and its transcript document).
   */
  PARLEY_FAILPOINTS: csv.default([]),
  /** Upper bound on generated tokens when a request names none. */
  PARLEY_DEFAULT_NUM_PREDICT: z.coerce.number().int().min(1).default(512),
  PARLEY_STREAM_TTL_S: z.coerce.number().int().min(10).default(86_400),
  PARLEY_STREAM_MAXLEN: z.coerce.number().int().min(100).default(50_000),
  /**
   * How long a job's event stream is kept once it ends (the record in Postgres keeps the result; the
   * stream only serves clients that resume). Per-kind defaults live in the job definitions
   * (`defaults.streamRetentionS`); this applies to kinds that name none. @defaultValue 1 h
   */
  PARLEY_STREAM_RETAIN_S: z.coerce.number().int().min(1).default(3_600),
  /** Per-kind overrides of the retention after the end, as "llm.chat=3600,system.ping=60". */
  PARLEY_STREAM_RETAIN_BY_KIND: z
    .string()
    .default('')
    .transform((spec, ctx) => {
      const out: Record<string, number> = {};
      for (const part of spec
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean)) {
        const [kind, value] = part.split('=');
        const n = Number(value);
        if (!kind || !Number.isInteger(n) || n < 1) {
          ctx.addIssue({ code: 'custom', message: `"${part}": expected <job kind>=<seconds>` });
          return z.NEVER;
        }
        out[kind.trim()] = n;
      }
      return out;
    }),
  PARLEY_BODY_LIMIT: z.string().default('1mb'),
  /**
   * Bounds on the API's request path, so every answer comes within about 2 s while Redis or
   * Postgres hangs (503 with Retry-After instead): each Redis command, and each Postgres query,
   * connect and pool acquisition. @defaultValue 1000 ms (Redis), 1500 ms (Postgres queries), 1000 ms (connect and acquire)
   */
  PARLEY_API_REDIS_TIMEOUT_MS: z.coerce.number().int().min(50).default(1_000),
  PARLEY_API_DB_QUERY_TIMEOUT_MS: z.coerce.number().int().min(50).default(1_500),
  PARLEY_API_DB_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(50).default(1_000),
  /**
   * HSTS and CSP upgrade-insecure-requests: "auto" sends them only on requests that arrived over
   * TLS (directly, or through a trusted proxy saying https), so a browser that opens the API by a
   * plain LAN address is never told to fetch its assets over HTTPS; "always" or "never" force it.
   */
  PARLEY_HSTS: z.enum(['auto', 'always', 'never']).default('auto'),
  PARLEY_JSON_MAX_DEPTH: z.coerce.number().int().min(2).max(256).default(32),
  PARLEY_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
  PARLEY_CORS_ORIGINS: csv.default([]),
  PARLEY_DASHBOARD: bool.default(true),
  /** Longest life of the queue board's cookie session (also never past the access token it came from). @defaultValue 900 s */
  PARLEY_BOARD_SESSION_TTL_S: z.coerce.number().int().min(10).max(86_400).default(900),
  /**
   * Which proxies may tell us the client's address (X-Forwarded-For) and scheme (X-Forwarded-Proto), in
   * Express's trust-proxy forms: "false" (none), a hop count ("1": the one proxy in front), or proxy
   * addresses, subnets and named ranges ("loopback,10.0.0.0/8"). "true" (every hop) is refused: it lets
   * any client choose its own IP. @defaultValue false
   */
  PARLEY_TRUST_PROXY: z
    .string()
    .default('false')
    .transform((spec, ctx): false | number | string[] => {
      const v = spec.trim();
      if (['', 'false', 'no', '0'].includes(v)) return false;
      if (['true', 'yes'].includes(v)) {
        ctx.addIssue({
          code: 'custom',
          message: '"true" trusts every hop, so any client could choose its own IP: give a hop count (e.g. 1) or the proxies\' addresses or subnets',
        });
        return z.NEVER;
      }
      if (/^\d+$/.test(v)) return Number(v);
      const entries = v
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean);
      const bad = entries.filter((x) => !isProxySpec(x));
      if (bad.length) {
        ctx.addIssue({ code: 'custom', message: `not an address, subnet (a.b.c.d/n, x::/n) or one of loopback, linklocal, uniquelocal: ${bad.join(', ')}` });
        return z.NEVER;
      }
      return entries;
    }),
  /** Access-token lifetime. @defaultValue 900 s (15 min): short, because a stolen one cannot be recalled. */
  PARLEY_ACCESS_TOKEN_TTL_S: z.coerce.number().int().min(10).max(86_400).default(900),
  PARLEY_REFRESH_TOKEN_TTL_S: z.coerce
    .number()
    .int()
    .min(60)
    .default(30 * 86_400),
  PARLEY_JWT_ISSUER: z.string().default('parley'),
  PARLEY_JWT_AUDIENCE: z.string().default('parley-api'),
  /**
   * How long a process may reuse what a session id resolved to (session row and user) between
   * requests. Revocation, role changes and disabling still apply at the next request through Redis
   * markers; this bounds staleness only if such a marker is lost. 0 reads Postgres on every request.
   * @defaultValue 10 000 ms
   */
  PARLEY_AUTH_CACHE_MS: z.coerce.number().int().min(0).max(300_000).default(10_000),
  /** Live (unrevoked, unexpired) API keys one user may hold; creating one more is 422 LIMIT_EXCEEDED. @defaultValue 20 */
  PARLEY_MAX_API_KEYS_PER_USER: z.coerce.number().int().min(1).max(10_000).default(20),
  /** Days a session row is kept after it expired or was revoked (then it and its refresh tokens are purged). @defaultValue 7 */
  PARLEY_SESSION_RETENTION_DAYS: z.coerce.number().min(0).max(3650).default(7),
  /** Days failed sign-ins (`auth.login` / `auth.refresh` failures) stay in the audit log. @defaultValue 30 */
  PARLEY_FAILED_LOGIN_RETENTION_DAYS: z.coerce.number().min(1).max(3650).default(30),
  /** How often one API process purges them (the first round comes a second after start). @defaultValue 3600 s */
  PARLEY_AUTH_PURGE_INTERVAL_S: z.coerce.number().int().min(1).max(86_400).default(3600),
  /** 401/403/429 answers on auth and admin routes are audited aggregated per window of this length (api/auth/denials.ts). @defaultValue 60 s */
  PARLEY_AUDIT_DENIAL_WINDOW_S: z.coerce.number().int().min(1).max(86_400).default(60),
  /** Distinct denial keys (status, route, IP, actor) written per window and process; the rest share one overflow row. @defaultValue 50 */
  PARLEY_AUDIT_DENIAL_MAX_KEYS: z.coerce.number().int().min(1).max(10_000).default(50),
  PARLEY_BOOTSTRAP_ADMIN_USER: z.string().min(1).optional(),
  PARLEY_BOOTSTRAP_ADMIN_PASSWORD: z.string().min(1).optional(),
  /** Window of every rate limit below. @defaultValue 60 s */
  PARLEY_RATE_WINDOW_S: z.coerce.number().int().min(1).max(3600).default(60),
  /** POST /v1/auth/token per client IP, any grant. @defaultValue 10 per window */
  PARLEY_RATE_TOKEN_PER_IP: z.coerce.number().int().min(1).default(10),
  /** Password grants per username, counting failures only (brute force). @defaultValue 5 per window */
  PARLEY_RATE_TOKEN_PER_USERNAME: z.coerce.number().int().min(1).default(5),
  /** Job writes (submit, cancel, retry) per user or API key, by role; `anonymous` is per IP. */
  PARLEY_RATE_JOBS_WRITE: roleLimits({ admin: 2400, operator: 1200, member: 120, viewer: 30, anonymous: 30 }),
  /** Job reads (get, list, events) per user or API key, by role: polling and SSE reconnects must not eat the submit budget. */
  PARLEY_RATE_JOBS_READ: roleLimits({ admin: 6000, operator: 6000, member: 1200, viewer: 600, anonymous: 60 }),
  /**
   * Every other authenticated API write (agents, discussions and their actions and messages, models,
   * budgets, API keys, admin) per user or API key, by role; one budget across those routes.
   */
  PARLEY_RATE_API_WRITE: roleLimits({ admin: 2400, operator: 1200, member: 300, viewer: 60, anonymous: 60 }),
  /** Every other API read (including discussion SSE), per user or API key, by role. */
  PARLEY_RATE_API_READ: roleLimits({ admin: 6000, operator: 6000, member: 1200, viewer: 600, anonymous: 120 }),
  OLLAMA_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(100).default(5_000),
  OLLAMA_FIRST_TOKEN_TIMEOUT_MS: z.coerce.number().int().min(100).default(120_000),
  OLLAMA_IDLE_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
  /** Several Ollama hosts, comma-separated, in preference order. @defaultValue OLLAMA_HOST alone */
  OLLAMA_HOSTS: z.string().optional(),
  /** Idle keep-alive sockets to Ollama are closed after this long. @defaultValue 30 s */
  OLLAMA_KEEPALIVE_MS: z.coerce.number().int().min(1000).default(30_000),
  /** Sockets per Ollama host (busy and idle). @defaultValue 64 */
  OLLAMA_MAX_SOCKETS: z.coerce.number().int().min(1).default(64),
  /** Attempts per request on host faults (refused, reset, connect timeout, 5xx but 503), before any output. @defaultValue 3 */
  OLLAMA_RETRY_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(3),
  /** Full-jitter backoff: the n-th retry waits uniform [0, min(max, base·2^n)). @defaultValue 250 ms, 5 s */
  OLLAMA_RETRY_BASE_MS: z.coerce.number().int().min(1).default(250),
  OLLAMA_RETRY_MAX_MS: z.coerce.number().int().min(1).default(5_000),
  /** How long one request keeps waiting out 503s (Ollama's queue full) before it fails. @defaultValue 5 min */
  OLLAMA_OVERLOAD_MAX_WAIT_MS: z.coerce.number().int().min(0).default(300_000),
  /** Consecutive host failures that open its circuit breaker, and how long it stays open. @defaultValue 5, 10 s */
  OLLAMA_BREAKER_FAILURES: z.coerce.number().int().min(1).default(5),
  OLLAMA_BREAKER_COOLDOWN_MS: z.coerce.number().int().min(10).default(10_000),
  /** Adaptive (AIMD) concurrency per host and process: start, floor, ceiling. @defaultValue 4, 1, 16 */
  OLLAMA_CONCURRENCY_INITIAL: z.coerce.number().int().min(1).default(4),
  OLLAMA_CONCURRENCY_MIN: z.coerce.number().int().min(1).default(1),
  OLLAMA_CONCURRENCY_MAX: z.coerce.number().int().min(1).default(16),
  /** A time to first token above this multiple of the model's moving baseline shrinks concurrency. @defaultValue 3 */
  OLLAMA_TTFT_CONGESTION_RATIO: z.coerce.number().min(1.1).default(3),
  /** Status poller (/api/version, /api/tags, /api/ps per host): interval and per-call timeout. @defaultValue 5 s, 2 s */
  OLLAMA_STATUS_INTERVAL_MS: z.coerce.number().int().min(100).default(5_000),
  OLLAMA_STATUS_TIMEOUT_MS: z.coerce.number().int().min(100).default(2_000),
  /** Response cache in Redis for deterministic chat and for embeddings (docs/caching.md). @defaultValue true */
  PARLEY_CACHE: bool.default(true),
  /** @defaultValue 1 h */
  PARLEY_CACHE_CHAT_TTL_S: z.coerce.number().int().min(1).default(3_600),
  /** @defaultValue 7 days: a model digest's embeddings never change. */
  PARLEY_CACHE_EMBED_TTL_S: z.coerce.number().int().min(1).default(604_800),
  /** How old the status poller's view may be when a model's digest (the cache key's model identity) is read from it; older, it polls first. @defaultValue 10 s */
  PARLEY_CACHE_DIGEST_TTL_MS: z.coerce.number().int().min(0).default(10_000),
  /**
   * Per-role caps on metered jobs, as JSON merged over the defaults field by field, e.g.
   * `{"member":{"models":["smollm2:135m"],"maxNumPredict":512}}`. See `roleCapDefaults` and docs/ollama.md.
   */
  PARLEY_ROLE_CAPS: z.string().default('{}'),
  /** The llm.chat handler checks the owner's token budget every this many streamed tokens. @defaultValue 16 */
  PARLEY_BUDGET_CHECK_TOKENS: z.coerce.number().int().min(1).max(4096).default(16),
  /** model.pull gives up after this long in all. @defaultValue 2 h: a multi-GB model on a slow link. */
  PARLEY_MODEL_PULL_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .default(2 * 3_600_000),
  /** model.pull gives up when Ollama reports nothing for this long. @defaultValue 60 s */
  PARLEY_MODEL_PULL_IDLE_TIMEOUT_MS: z.coerce.number().int().min(100).default(60_000),
  /**
   * Registry hosts (`host[:port]`, comma-separated) that POST /v1/models/pull may name. A name without
   * a host always pulls from Ollama's default registry; any other host, internal addresses included,
   * must be listed here. @defaultValue none
   */
  PARLEY_MODEL_PULL_REGISTRIES: csv.default([]),
  /** Registry hosts for which a pull may ask for `insecure` (plain HTTP, unverified TLS). @defaultValue none */
  PARLEY_MODEL_PULL_INSECURE_REGISTRIES: csv.default([]),
  /** keep_alive of POST /v1/models/:name/load when the body names none. @defaultValue 30m */
  PARLEY_MODEL_LOAD_KEEP_ALIVE: z
    .string()
    .regex(/^(0|-?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+)$/)
    .default('30m'),
  /** Where local data lives (the services manager uses the same variable). @defaultValue `.data` in the checkout */
  PARLEY_DATA_DIR: z.string().optional(),
  /** The vector store: a folder, or an object-store URI (s3://…, gs://…, az://…). @defaultValue `<data dir>/lancedb` */
  PARLEY_LANCEDB_URI: z.string().min(1).optional(),
  /**
   * An S3-compatible object store for an `s3://bucket/prefix` PARLEY_LANCEDB_URI (MinIO, Ceph, R2…);
   * unset, AWS S3 itself. Plain `http://` endpoints are allowed for stores on a private network.
   */
  PARLEY_LANCEDB_S3_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
  /** The bucket's region. @defaultValue unset: the AWS default chain (AWS_REGION…); us-east-1 with an endpoint (what MinIO answers to unless configured otherwise) */
  PARLEY_LANCEDB_S3_REGION: z.string().min(1).optional(),
  /** Credentials for the object store; unset, the usual AWS sources (instance role, AWS_* variables) apply. */
  PARLEY_LANCEDB_S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  PARLEY_LANCEDB_S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  /** Uploaded repositories' trees, shared by API and workers. @defaultValue `<data dir>/code` */
  PARLEY_CODE_DIR: z.string().min(1).optional(),
  /** Folders under which `path` repositories may live (absolute, comma-separated). @defaultValue none: path sources are refused */
  PARLEY_CODE_ROOTS: csv.default([]),
  /** The code index's embedding model. @defaultValue PARLEY_EMBED_MODEL */
  PARLEY_CODE_EMBED_MODEL: z.string().min(1).optional(),
  /** The embedding model's window in tokens, [CLS] and [SEP] included: chunks are cut to fit it. @defaultValue 256 (all-MiniLM-L6-v2's) */
  PARLEY_CODE_EMBED_WINDOW: z.coerce.number().int().min(32).max(32_768).default(256),
  /** Texts per /api/embed call while indexing (bench/codebench measures the choice). @defaultValue 16 */
  PARLEY_CODE_EMBED_BATCH: z.coerce.number().int().min(1).max(256).default(16),
  /**
   * Source bytes per indexing batch (at most 100 files): one LanceDB commit, one checkpoint, and at most
   * what a crash makes the job redo. @defaultValue 64 KiB (about 100-150 chunks)
   */
  PARLEY_CODE_BATCH_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(64 * 1024),
  /** Files larger than this are skipped as too large. @defaultValue 1 MiB */
  PARLEY_CODE_MAX_FILE_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(1024 * 1024),
  /** Indexable files per repository. @defaultValue 100 000 */
  PARLEY_CODE_MAX_FILES: z.coerce.number().int().min(1).default(100_000),
  /** Uploaded archive caps: compressed bytes, unpacked bytes, file entries. @defaultValue 100 MiB, 1 GiB, 100 000 */
  PARLEY_CODE_ARCHIVE_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(100 * 1024 * 1024),
  PARLEY_CODE_ARCHIVE_MAX_UNPACKED_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(1024 * 1024 * 1024),
  PARLEY_CODE_ARCHIVE_MAX_FILES: z.coerce.number().int().min(1).default(100_000),
  /** Rows from which a vector table gets an ANN index (below, a flat scan is faster). @defaultValue 20 000 */
  PARLEY_VECTOR_INDEX_MIN_ROWS: z.coerce.number().int().min(256).default(20_000),
  /** The ANN index type. @defaultValue hnsw_sq */
  PARLEY_VECTOR_INDEX: z.enum(['hnsw_sq', 'ivf_pq']).default('hnsw_sq'),
  /** HNSW's candidate list at query time (at least limit × 10 is used): recall against latency. @defaultValue 64 */
  PARLEY_VECTOR_HNSW_EF: z.coerce.number().int().min(10).max(10_000).default(64),
  /** HNSW graph build settings, `m,efConstruction` (neighbours per node, build candidate list). @defaultValue 48,600 */
  PARLEY_VECTOR_HNSW_BUILD: z
    .string()
    .regex(/^\d{1,3},\d{1,4}$/, 'two whole numbers: m,efConstruction')
    .default('48,600')
    .transform((s) => {
      const [m, efConstruction] = s.split(',').map(Number) as [number, number];
      return { m, efConstruction };
    }),
  /** Table versions younger than this are kept for readers in flight; older ones are removed. @defaultValue 10 s */
  PARLEY_LANCEDB_VERSION_RETENTION_S: z.coerce.number().min(0).default(10),
  /** How often the vector maintenance job runs. @defaultValue 600 s */
  PARLEY_VECTORS_MAINTAIN_INTERVAL_S: z.coerce.number().int().min(1).default(600),
  /** A retired index generation's table is dropped this long after the switch. @defaultValue 600 s */
  PARLEY_VECTORS_RETIRED_GRACE_S: z.coerce.number().int().min(0).default(600),
  /** The chat model of knowledge extraction's optional LLM pass. @defaultValue PARLEY_CHAT_MODEL */
  PARLEY_KNOWLEDGE_LLM_MODEL: z.string().min(1).optional(),
  /** The most tokens one LLM-pass answer may take (an answer cut off is refused and the deterministic result kept). @defaultValue 256 */
  PARLEY_KNOWLEDGE_LLM_MAX_TOKENS: z.coerce.number().int().min(1).max(4096).default(256),
  /** A soft-expired knowledge item is purged by vector maintenance this long after it expired (until then a pin brings it back). @defaultValue 7 days */
  PARLEY_KNOWLEDGE_PURGE_GRACE_S: z.coerce
    .number()
    .int()
    .min(0)
    .default(7 * 86_400),
  /**
   * Per-kind bounds on a job's input (checked at submit and retry) and result (checked by the worker
   * before the record is written), in bytes of JSON, as JSON merged over `jobLimitDefaults` kind by
   * kind, e.g. `{"embed.batch":{"resultBytes":8388608}}`. A result over its bound is refused: the job
   * fails RESULT_TOO_LARGE (there is no blob store). @defaultValue see `jobLimitDefaults`
   */
  PARLEY_JOB_LIMITS: z.string().default('{}'),
  /** Live event connections (SSE streams and Socket.IO connections together) one user may hold, over every API process. @defaultValue 20 */
  PARLEY_MAX_CONNECTIONS_PER_USER: z.coerce.number().int().min(1).max(10_000).default(20),
  /** Socket.IO handshakes per client IP per rate window (PARLEY_RATE_WINDOW_S). @defaultValue 60 */
  PARLEY_RATE_SOCKET_HANDSHAKES_PER_IP: z.coerce.number().int().min(1).default(60),
  /** Socket.IO `subscribe` calls per user per rate window. @defaultValue 600 */
  PARLEY_RATE_SOCKET_SUBSCRIBES: z.coerce.number().int().min(1).default(600),
  /**
   * A live reader (SSE or Socket.IO) whose unsent output passes this many bytes is a slow consumer: its
   * connection is closed and it resumes from its last seq when it reconnects. @defaultValue 1 MiB
   */
  PARLEY_SLOW_READER_MAX_BYTES: z.coerce.number().int().min(1024).default(1_048_576),
  /** Rooms one user may have open (draft, running or paused) at once; forks count. @defaultValue 20 */
  PARLEY_MAX_OPEN_ROOMS_PER_USER: z.coerce.number().int().min(1).max(10_000).default(20),
  /** Agents one user may own; a fork of someone else's room copies its agents to the forker. @defaultValue 100 */
  PARLEY_MAX_AGENTS_PER_USER: z.coerce.number().int().min(1).max(100_000).default(100),
  /** Human messages one room takes, in all. @defaultValue 200 */
  PARLEY_ROOM_MAX_MESSAGES: z.coerce.number().int().min(1).max(100_000).default(200),
  /**
   * Entries a room's event stream keeps (approximately: XADD MAXLEN ~). A viewer who resumes from before
   * the oldest kept entry gets a `snapshot` of the transcript first. @defaultValue 5000
   */
  PARLEY_ROOM_STREAM_MAXLEN: z.coerce.number().int().min(100).default(5_000),
  /** Deep readiness (`/readyz?deep=1`) runs at most once per this many seconds over every API process; sooner is 429. @defaultValue 10 s */
  PARLEY_READYZ_DEEP_INTERVAL_S: z.coerce.number().int().min(1).max(3600).default(10),
});

/** LanceDB's object-store options (object_store's `aws_*` keys) from the PARLEY_LANCEDB_S3_* variables; undefined when none is set. */
function lanceStorageOptions(e: z.infer<typeof Env>): Record<string, string> | undefined {
  const o: Record<string, string> = {};
  if (e.PARLEY_LANCEDB_S3_ENDPOINT) {
    o.aws_endpoint = e.PARLEY_LANCEDB_S3_ENDPOINT;
    if (e.PARLEY_LANCEDB_S3_ENDPOINT.startsWith('http://')) o.allow_http = 'true';
  }
  if (e.PARLEY_LANCEDB_S3_ACCESS_KEY_ID) o.aws_access_key_id = e.PARLEY_LANCEDB_S3_ACCESS_KEY_ID;
  if (e.PARLEY_LANCEDB_S3_SECRET_ACCESS_KEY) o.aws_secret_access_key = e.PARLEY_LANCEDB_S3_SECRET_ACCESS_KEY;
  if (e.PARLEY_LANCEDB_S3_REGION) o.aws_region = e.PARLEY_LANCEDB_S3_REGION;
  else if (e.PARLEY_LANCEDB_S3_ENDPOINT) o.aws_region = 'us-east-1';
  return Object.keys(o).length === 0 ? undefined : o;
}

/**
 * Secrets may come from files instead (Docker and Kubernetes secrets): `<NAME>_FILE` names a file
 * whose content, without the trailing newline, is the value. Setting both is an error.
 */
export const secretVars = [
  'REDIS_URL',
  'DATABASE_URL',
  'DATABASE_PASSWORD',
  'MONGODB_URL',
  'PARLEY_BOOTSTRAP_ADMIN_PASSWORD',
  'PARLEY_METRICS_TOKEN',
  'PARLEY_LANCEDB_S3_ACCESS_KEY_ID',
  'PARLEY_LANCEDB_S3_SECRET_ACCESS_KEY',
] as const;

/** Every environment variable the platform reads: the schema's names and the `_FILE` form of each secret. */
export function knownEnvVars(): string[] {
  return [...Object.keys(Env.shape), ...secretVars.map((n) => `${n}_FILE`)];
}

function withSecretFiles(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const name of secretVars) {
    const file = env[`${name}_FILE`];
    if (!file) continue;
    if (env[name] !== undefined) throw new Error(`invalid configuration: set ${name} or ${name}_FILE, not both`);
    try {
      out[name] = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new Error(`invalid configuration: ${name}_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
        cause: err,
      });
    }
  }
  return out;
}

/** DATABASE_URL with DATABASE_PASSWORD put in, when the URL has no password of its own. */
function databaseUrl(url: string, password: string | undefined): string {
  if (!password) return url;
  const u = new URL(url);
  if (u.password) return url;
  u.password = encodeURIComponent(password);
  return u.toString();
}

export type Config = ReturnType<typeof loadConfig>;

/** An entry of PARLEY_TRUST_PROXY's list: an IP, an IP/prefix, or one of Express's named ranges. */
function isProxySpec(entry: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(entry)) return true;
  const [addr, prefix, ...rest] = entry.split('/');
  const family = isIP(addr ?? '');
  if (!family || rest.length) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env) {
  const parsed = Env.safeParse(withSecretFiles(env));
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n');
    throw new Error(`invalid configuration:\n${lines}`);
  }
  const e = parsed.data;
  const ollamaHost = e.OLLAMA_HOST ?? `http://127.0.0.1:${e.PARLEY_OLLAMA_PORT}`;
  return {
    env: e.PARLEY_ENV,
    logLevel: e.LOG_LEVEL,
    /** Per process kind: PARLEY_API_LOG_LEVEL / PARLEY_WORKER_LOG_LEVEL, else LOG_LEVEL. */
    logLevels: { api: e.PARLEY_API_LOG_LEVEL ?? e.LOG_LEVEL, workers: e.PARLEY_WORKER_LOG_LEVEL ?? e.LOG_LEVEL },
    port: e.PORT,
    /** The workers' own ops server (health, readiness, metrics). */
    workerOps: { port: e.PARLEY_WORKER_PORT, host: e.PARLEY_WORKER_HOST },
    metricsToken: e.PARLEY_METRICS_TOKEN,
    // A CLI run without the service env still reaches this clone's own services, on its own ports.
    redisUrl: e.REDIS_URL ?? `redis://127.0.0.1:${e.PARLEY_REDIS_PORT}`,
    databaseUrl: databaseUrl(e.DATABASE_URL ?? `postgres://parley@127.0.0.1:${e.PARLEY_PG_PORT}/parley`, e.DATABASE_PASSWORD),
    mongoUrl: e.MONGODB_URL ?? `mongodb://127.0.0.1:${e.PARLEY_MONGO_PORT}/parley`,
    keyPrefix: e.PARLEY_KEY_PREFIX,
    failpoints: new Set(e.PARLEY_ENV === 'test' ? e.PARLEY_FAILPOINTS : []),
    ollama: {
      host: ollamaHost.includes('://') ? ollamaHost : `http://${ollamaHost}`,
      chatModel: e.PARLEY_CHAT_MODEL,
      embedModel: e.PARLEY_EMBED_MODEL,
      defaultNumPredict: e.PARLEY_DEFAULT_NUM_PREDICT,
      connectTimeoutMs: e.OLLAMA_CONNECT_TIMEOUT_MS,
      firstTokenTimeoutMs: e.OLLAMA_FIRST_TOKEN_TIMEOUT_MS,
      idleTimeoutMs: e.OLLAMA_IDLE_TIMEOUT_MS,
      hosts: (e.OLLAMA_HOSTS
        ? e.OLLAMA_HOSTS.split(',')
            .map((h) => h.trim())
            .filter(Boolean)
        : [ollamaHost]
      ).map(ollamaHostUrl),
      keepAliveMs: e.OLLAMA_KEEPALIVE_MS,
      maxSockets: e.OLLAMA_MAX_SOCKETS,
      retry: {
        attempts: e.OLLAMA_RETRY_ATTEMPTS,
        baseMs: e.OLLAMA_RETRY_BASE_MS,
        maxMs: e.OLLAMA_RETRY_MAX_MS,
        overloadMaxWaitMs: e.OLLAMA_OVERLOAD_MAX_WAIT_MS,
      },
      breaker: { failureThreshold: e.OLLAMA_BREAKER_FAILURES, cooldownMs: e.OLLAMA_BREAKER_COOLDOWN_MS },
      concurrency: {
        initial: e.OLLAMA_CONCURRENCY_INITIAL,
        min: e.OLLAMA_CONCURRENCY_MIN,
        max: Math.max(e.OLLAMA_CONCURRENCY_MIN, e.OLLAMA_CONCURRENCY_MAX),
        latencyRatio: e.OLLAMA_TTFT_CONGESTION_RATIO,
      },
      status: { intervalMs: e.OLLAMA_STATUS_INTERVAL_MS, timeoutMs: e.OLLAMA_STATUS_TIMEOUT_MS },
      digestTtlMs: e.PARLEY_CACHE_DIGEST_TTL_MS,
    },
    workers: {
      concurrency: parseConcurrency(e.PARLEY_CONCURRENCY),
      queues: parseQueues(e.PARLEY_WORKER_QUEUES),
      chunkThreads: e.PARLEY_CHUNK_THREADS,
      lockMs: e.PARLEY_LOCK_MS,
      stalledIntervalMs: e.PARLEY_STALLED_INTERVAL_MS,
      agingMs: e.PARLEY_AGING_MS,
      sweepIntervalMs: e.PARLEY_SWEEP_INTERVAL_MS,
      shutdownGraceMs: e.PARLEY_SHUTDOWN_GRACE_MS,
      outageWaitMs: e.PARLEY_OUTAGE_WAIT_MS,
    },
    streams: {
      ttlSeconds: e.PARLEY_STREAM_TTL_S,
      maxLen: e.PARLEY_STREAM_MAXLEN,
      retainAfterFinishS: e.PARLEY_STREAM_RETAIN_S,
      retainByKind: e.PARLEY_STREAM_RETAIN_BY_KIND,
    },
    cache: { enabled: e.PARLEY_CACHE, chatTtlS: e.PARLEY_CACHE_CHAT_TTL_S, embedTtlS: e.PARLEY_CACHE_EMBED_TTL_S },
    auth: {
      accessTtlSeconds: e.PARLEY_ACCESS_TOKEN_TTL_S,
      refreshTtlSeconds: e.PARLEY_REFRESH_TOKEN_TTL_S,
      issuer: e.PARLEY_JWT_ISSUER,
      audience: e.PARLEY_JWT_AUDIENCE,
      credentialCacheMs: e.PARLEY_AUTH_CACHE_MS,
      maxApiKeysPerUser: e.PARLEY_MAX_API_KEYS_PER_USER,
      denials: { windowMs: e.PARLEY_AUDIT_DENIAL_WINDOW_S * 1000, maxKeys: e.PARLEY_AUDIT_DENIAL_MAX_KEYS },
      retention: {
        sessionDays: e.PARLEY_SESSION_RETENTION_DAYS,
        failedLoginDays: e.PARLEY_FAILED_LOGIN_RETENTION_DAYS,
        intervalMs: e.PARLEY_AUTH_PURGE_INTERVAL_S * 1000,
      },
      bootstrapAdmin:
        e.PARLEY_BOOTSTRAP_ADMIN_USER && e.PARLEY_BOOTSTRAP_ADMIN_PASSWORD
          ? { username: e.PARLEY_BOOTSTRAP_ADMIN_USER, password: e.PARLEY_BOOTSTRAP_ADMIN_PASSWORD }
          : undefined,
    },
    http: {
      bodyLimit: e.PARLEY_BODY_LIMIT,
      jsonMaxDepth: e.PARLEY_JSON_MAX_DEPTH,
      requestTimeoutMs: e.PARLEY_REQUEST_TIMEOUT_MS,
      corsOrigins: e.PARLEY_CORS_ORIGINS,
      dashboard: e.PARLEY_DASHBOARD,
      boardSessionTtlSeconds: e.PARLEY_BOARD_SESSION_TTL_S,
      trustProxy: e.PARLEY_TRUST_PROXY,
      hsts: e.PARLEY_HSTS,
      redisTimeoutMs: e.PARLEY_API_REDIS_TIMEOUT_MS,
      dbQueryTimeoutMs: e.PARLEY_API_DB_QUERY_TIMEOUT_MS,
      dbConnectTimeoutMs: e.PARLEY_API_DB_CONNECT_TIMEOUT_MS,
    },
    rateLimits: {
      windowMs: e.PARLEY_RATE_WINDOW_S * 1000,
      token: { perIp: e.PARLEY_RATE_TOKEN_PER_IP, perUsername: e.PARLEY_RATE_TOKEN_PER_USERNAME },
      jobs: { write: e.PARLEY_RATE_JOBS_WRITE, read: e.PARLEY_RATE_JOBS_READ },
      api: { write: e.PARLEY_RATE_API_WRITE, read: e.PARLEY_RATE_API_READ },
    },
    roleCaps: parseRoleCaps(e.PARLEY_ROLE_CAPS, { chatModel: e.PARLEY_CHAT_MODEL, embedModel: e.PARLEY_EMBED_MODEL }),
    budgets: { checkEveryTokens: e.PARLEY_BUDGET_CHECK_TOKENS },
    jobLimits: parseJobLimits(e.PARLEY_JOB_LIMITS),
    realtime: {
      maxConnectionsPerUser: e.PARLEY_MAX_CONNECTIONS_PER_USER,
      handshakesPerIp: e.PARLEY_RATE_SOCKET_HANDSHAKES_PER_IP,
      subscribesPerUser: e.PARLEY_RATE_SOCKET_SUBSCRIBES,
      windowMs: e.PARLEY_RATE_WINDOW_S * 1000,
      slowReaderMaxBytes: e.PARLEY_SLOW_READER_MAX_BYTES,
    },
    rooms: {
      maxOpenPerUser: e.PARLEY_MAX_OPEN_ROOMS_PER_USER,
      maxAgentsPerUser: e.PARLEY_MAX_AGENTS_PER_USER,
      maxMessages: e.PARLEY_ROOM_MAX_MESSAGES,
      streamMaxLen: e.PARLEY_ROOM_STREAM_MAXLEN,
    },
    readyzDeepIntervalMs: e.PARLEY_READYZ_DEEP_INTERVAL_S * 1000,
    modelOps: {
      pullTimeoutMs: e.PARLEY_MODEL_PULL_TIMEOUT_MS,
      pullIdleTimeoutMs: e.PARLEY_MODEL_PULL_IDLE_TIMEOUT_MS,
      loadKeepAlive: e.PARLEY_MODEL_LOAD_KEEP_ALIVE,
      pullRegistries: e.PARLEY_MODEL_PULL_REGISTRIES.map((h) => h.toLowerCase()),
      pullInsecureRegistries: e.PARLEY_MODEL_PULL_INSECURE_REGISTRIES.map((h) => h.toLowerCase()),
    },
    vectors: {
      uri: e.PARLEY_LANCEDB_URI ?? `${dataDir(e.PARLEY_DATA_DIR)}/lancedb`,
      storageOptions: lanceStorageOptions(e),
      /** What openVectorStore takes as `maintenance` (platform/vectors MaintenancePolicy). */
      maintenance: {
        vectorIndexMinRows: e.PARLEY_VECTOR_INDEX_MIN_ROWS,
        vectorIndex: e.PARLEY_VECTOR_INDEX,
        hnswEf: e.PARLEY_VECTOR_HNSW_EF,
        hnswBuild: e.PARLEY_VECTOR_HNSW_BUILD,
        versionRetentionMs: e.PARLEY_LANCEDB_VERSION_RETENTION_S * 1000,
      },
      maintainIntervalMs: e.PARLEY_VECTORS_MAINTAIN_INTERVAL_S * 1000,
      retiredGraceMs: e.PARLEY_VECTORS_RETIRED_GRACE_S * 1000,
      knowledgePurgeGraceMs: e.PARLEY_KNOWLEDGE_PURGE_GRACE_S * 1000,
    },
    knowledge: {
      /** The optional LLM pass of knowledge.extract. */
      llmModel: e.PARLEY_KNOWLEDGE_LLM_MODEL ?? e.PARLEY_CHAT_MODEL,
      llmMaxTokens: e.PARLEY_KNOWLEDGE_LLM_MAX_TOKENS,
    },
    code: {
      dir: e.PARLEY_CODE_DIR ?? `${dataDir(e.PARLEY_DATA_DIR)}/code`,
      roots: e.PARLEY_CODE_ROOTS,
      embedModel: e.PARLEY_CODE_EMBED_MODEL ?? e.PARLEY_EMBED_MODEL,
      embedWindow: e.PARLEY_CODE_EMBED_WINDOW,
      embedBatch: e.PARLEY_CODE_EMBED_BATCH,
      batchBytes: e.PARLEY_CODE_BATCH_BYTES,
      maxFileBytes: e.PARLEY_CODE_MAX_FILE_BYTES,
      maxFiles: e.PARLEY_CODE_MAX_FILES,
      archive: {
        maxBytes: e.PARLEY_CODE_ARCHIVE_MAX_BYTES,
        maxUnpackedBytes: e.PARLEY_CODE_ARCHIVE_MAX_UNPACKED_BYTES,
        maxFiles: e.PARLEY_CODE_ARCHIVE_MAX_FILES,
      },
    },
  };
}

/** The data folder: PARLEY_DATA_DIR, else `.data` at the root of this checkout. */
function dataDir(configured: string | undefined): string {
  return configured ?? fileURLToPath(new URL('../.data', import.meta.url));
}

const defaultConcurrency = { llm: 4, embed: 2, code: 2, 'code-batch': 1, system: 32, models: 1 } as const;
type WorkerQueue = keyof typeof defaultConcurrency;

function parseQueues(names: string[] | undefined): WorkerQueue[] | undefined {
  if (!names) return undefined;
  const bad = names.filter((n) => !(n in defaultConcurrency));
  if (bad.length || names.length === 0)
    throw new Error(`invalid configuration: PARLEY_WORKER_QUEUES "${names.join(',')}": expected some of ${Object.keys(defaultConcurrency).join(', ')}`);
  return [...new Set(names)] as WorkerQueue[];
}

function parseConcurrency(spec: string): Record<keyof typeof defaultConcurrency, number> {
  const out: Record<string, number> = { ...defaultConcurrency };
  for (const part of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [name, value] = part.split('=');
    const n = Number(value);
    if (!name || !(name in defaultConcurrency) || !Number.isInteger(n) || n < 1) throw new Error(`invalid configuration: PARLEY_CONCURRENCY entry "${part}"`);
    out[name] = n;
  }
  return out as Record<keyof typeof defaultConcurrency, number>;
}

const capRoles = ['admin', 'operator', 'member', 'viewer'] as const;
export type CapRole = (typeof capRoles)[number];

/** What one role may ask of the models. Enforced at submit (422 LIMIT_EXCEEDED naming the cap and its limit). */
export interface RoleCap {
  /** Models the role may use, by name (`name` means `name:latest`), or '*' for every installed model. */
  models: '*' | string[];
  /** Upper bound on `options.num_predict`; also bounds the default a job gets when it names none. */
  maxNumPredict: number;
  /** Upper bound on `options.num_ctx` (a different num_ctx reloads the model in Ollama). */
  maxNumCtx: number;
  /** Characters of prompt: all chat messages, or all texts of an embedding batch. */
  maxPromptChars: number;
  /** Metered jobs (llm.chat, embed.batch) one user may have queued or active at once. */
  maxConcurrentJobs: number;
  /**
   * Longest `keep_alive` the role may ask for, in seconds (a job's, or a model load's); -1 allows any,
   * forever (-1) included. A loaded model holds memory every other user needs.
   */
  maxKeepAliveS: number;
  /**
   * Priority classes the role may ask for. A job that asks for none gets its kind's default, lowered
   * to the best class the role has (members' chats run `normal`). `interactive` is for people waiting.
   */
  priorities: PriorityClass[];
  /** Longest `holdMs` of a system.ping: a held ping occupies a worker slot. */
  maxPingHoldMs: number;
}

/**
 * Defaults per role. Members get the two configured models and bounds that fit
 * a small shared box; operators and admins every installed model and more room.
 */
export function roleCapDefaults(models: { chatModel: string; embedModel: string }): Record<CapRole, RoleCap> {
  const own = [models.chatModel, models.embedModel];
  return {
    admin: {
      models: '*',
      maxNumPredict: 8192,
      maxNumCtx: 32_768,
      maxPromptChars: 400_000,
      maxConcurrentJobs: 32,
      maxKeepAliveS: -1,
      priorities: ['interactive', 'normal', 'batch'],
      maxPingHoldMs: 120_000,
    },
    operator: {
      models: '*',
      maxNumPredict: 4096,
      maxNumCtx: 16_384,
      maxPromptChars: 200_000,
      maxConcurrentJobs: 16,
      maxKeepAliveS: -1,
      priorities: ['interactive', 'normal', 'batch'],
      maxPingHoldMs: 120_000,
    },
    member: {
      models: own,
      maxNumPredict: 2048,
      maxNumCtx: 8192,
      maxPromptChars: 100_000,
      maxConcurrentJobs: 16,
      maxKeepAliveS: 1800,
      priorities: ['normal', 'batch'],
      maxPingHoldMs: 10_000,
    },
    viewer: {
      models: own,
      maxNumPredict: 512,
      maxNumCtx: 2048,
      maxPromptChars: 8000,
      maxConcurrentJobs: 1,
      maxKeepAliveS: 300,
      priorities: ['batch'],
      maxPingHoldMs: 0,
    },
  };
}

const RoleCapSpec = z
  .object({
    models: z.union([z.literal('*'), z.array(z.string().min(1).max(200)).max(500)]),
    maxNumPredict: z.number().int().min(1).max(32_768),
    maxNumCtx: z.number().int().min(128).max(131_072),
    maxPromptChars: z.number().int().min(1),
    maxConcurrentJobs: z.number().int().min(1),
    maxKeepAliveS: z.number().int().min(-1),
    priorities: z.array(PriorityClass).min(1),
    maxPingHoldMs: z.number().int().min(0).max(120_000),
  })
  .partial()
  .strict();
const RoleCapsSpec = z
  .object(Object.fromEntries(capRoles.map((r) => [r, RoleCapSpec.optional()])) as Record<CapRole, z.ZodOptional<typeof RoleCapSpec>>)
  .strict();

function parseRoleCaps(spec: string, models: { chatModel: string; embedModel: string }): Record<CapRole, RoleCap> {
  let json: unknown;
  try {
    json = JSON.parse(spec);
  } catch (err) {
    throw new Error(`invalid configuration: PARLEY_ROLE_CAPS is not JSON (${(err as Error).message})`);
  }
  const parsed = RoleCapsSpec.safeParse(json);
  if (!parsed.success) {
    throw new Error(`invalid configuration: PARLEY_ROLE_CAPS ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const out = roleCapDefaults(models);
  for (const role of capRoles) out[role] = { ...out[role], ...parsed.data[role] };
  return out;
}

/** Bounds on one job kind's payload and result, in bytes of JSON. */
export interface JobLimit {
  /** The input as submitted (and as retried). Over it: 422 LIMIT_EXCEEDED at submit. */
  inputBytes: number;
  /** The result the worker would record. Over it: the job fails RESULT_TOO_LARGE (not retried). */
  resultBytes: number;
}

/**
 * Defaults per kind. A result lives in Postgres for good and, until its stream expires, in the job's
 * Redis stream: 4 MiB of embeddings is about 500 vectors of 384 dimensions, so an `embed.batch` of
 * 2,048 texts (about 15 MB of vectors) is refused rather than kept. Kinds not listed get `fallback`.
 */
export const jobLimitDefaults: Record<string, JobLimit> & { fallback: JobLimit } = {
  'llm.chat': { inputBytes: 512 * 1024, resultBytes: 256 * 1024 },
  'embed.batch': { inputBytes: 256 * 1024, resultBytes: 4 * 1024 * 1024 },
  'code.chunk': { inputBytes: 512 * 1024, resultBytes: 4 * 1024 * 1024 },
  'system.ping': { inputBytes: 8 * 1024, resultBytes: 8 * 1024 },
  'model.pull': { inputBytes: 4 * 1024, resultBytes: 64 * 1024 },
  'discussion.turn': { inputBytes: 4 * 1024, resultBytes: 256 * 1024 },
  'discussion.summarize': { inputBytes: 4 * 1024, resultBytes: 64 * 1024 },
  fallback: { inputBytes: 256 * 1024, resultBytes: 1024 * 1024 },
};

const JobLimitSpec = z
  .object({ inputBytes: z.number().int().min(64), resultBytes: z.number().int().min(64) })
  .partial()
  .strict();

function parseJobLimits(spec: string): { of(kind: string): JobLimit } {
  let json: unknown;
  try {
    json = JSON.parse(spec);
  } catch (err) {
    throw new Error(`invalid configuration: PARLEY_JOB_LIMITS is not JSON (${(err as Error).message})`);
  }
  const parsed = z.record(z.string(), JobLimitSpec).safeParse(json);
  if (!parsed.success)
    throw new Error(`invalid configuration: PARLEY_JOB_LIMITS ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const limits: Record<string, JobLimit> = { ...jobLimitDefaults };
  for (const [kind, l] of Object.entries(parsed.data)) limits[kind] = { ...(limits[kind] ?? jobLimitDefaults.fallback), ...l };
  return { of: (kind) => limits[kind] ?? limits.fallback ?? jobLimitDefaults.fallback };
}

/**
 * An Ollama host as the client, metrics and messages name it: a scheme, no trailing slash. Credentials
 * in it are refused: the client would not send them, and the URL is a metric label, a /readyz field and
 * part of upstream error messages that reach job records.
 */
function ollamaHostUrl(raw: string): string {
  const url = (raw.includes('://') ? raw : `http://${raw}`).replace(/\/+$/, '');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`invalid configuration: Ollama host "${raw.replace(/\/\/[^@/]*@/, '//…@')}" is not a URL`);
  }
  if (parsed.username || parsed.password)
    throw new Error(
      'invalid configuration: an Ollama host URL carries credentials (user:password@), which Parley neither sends nor hides; put an authenticating proxy in front or drop them',
    );
  return url;
}
