/**
 * Configuration: parsed once, with zod, from the environment. Nothing else in
 * the product reads `process.env`; composition roots call `loadConfig()` and
 * pass the result down.
 */
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const csv = z.string().transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean));
const limitClasses = ['admin', 'operator', 'member', 'viewer', 'anonymous'] as const;
/** Requests per window per role, as "member=120,operator=1200"; roles left out keep their default. */
const roleLimits = (defaults: Record<(typeof limitClasses)[number], number>) =>
  z
    .string()
    .default('')
    .transform((spec, ctx) => {
      const out = { ...defaults };
      for (const part of spec.split(',').map((x) => x.trim()).filter(Boolean)) {
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

const Env = z.object({
  PARLEY_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  REDIS_URL: z.string().default('redis://127.0.0.1:6390'),
  DATABASE_URL: z.string().default('postgres://parley@127.0.0.1:5440/parley'),
  OLLAMA_HOST: z.string().default('http://127.0.0.1:11500'),
  MONGODB_URL: z.string().default('mongodb://127.0.0.1:27030/parley'),
  PARLEY_CHAT_MODEL: z.string().default('smollm2:135m'),
  PARLEY_EMBED_MODEL: z.string().default('all-minilm'),
  /** Prefix of every Redis key and BullMQ queue; tests give each suite its own. */
  PARLEY_KEY_PREFIX: z.string().regex(/^[a-zA-Z0-9_.:-]+$/).default('parley'),
  /** Worker concurrency per queue, e.g. "llm=4,embed=2,code=2,system=16". */
  PARLEY_CONCURRENCY: z.string().default(''),
  PARLEY_CHUNK_THREADS: z.coerce.number().int().min(1).max(64).optional(),
  /** How long a job's lock lives without renewal; a dead worker's jobs are recovered after about this long. */
  PARLEY_LOCK_MS: z.coerce.number().int().min(1000).default(30_000),
  PARLEY_STALLED_INTERVAL_MS: z.coerce.number().int().min(500).default(15_000),
  /** A queued job older than this is promoted one priority class, so batch work always progresses. */
  PARLEY_AGING_MS: z.coerce.number().int().min(100).default(30_000),
  PARLEY_SWEEP_INTERVAL_MS: z.coerce.number().int().min(100).default(5_000),
  /** On SIGTERM, active jobs get this long to finish before they are handed back to the queue. */
  PARLEY_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
  /** Upper bound on generated tokens when a request names none. */
  PARLEY_DEFAULT_NUM_PREDICT: z.coerce.number().int().min(1).default(512),
  PARLEY_STREAM_TTL_S: z.coerce.number().int().min(10).default(86_400),
  PARLEY_STREAM_MAXLEN: z.coerce.number().int().min(100).default(50_000),
  PARLEY_BODY_LIMIT: z.string().default('1mb'),
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
  PARLEY_TRUST_PROXY: bool.default(false),
  /** Access-token lifetime. @defaultValue 900 s (15 min): short, because a stolen one cannot be recalled. */
  PARLEY_ACCESS_TOKEN_TTL_S: z.coerce.number().int().min(10).max(86_400).default(900),
  PARLEY_REFRESH_TOKEN_TTL_S: z.coerce.number().int().min(60).default(30 * 86_400),
  PARLEY_JWT_ISSUER: z.string().default('parley'),
  PARLEY_JWT_AUDIENCE: z.string().default('parley-api'),
  /**
   * How long a process may reuse what a session id resolved to (session row and user) between
   * requests. Revocation, role changes and disabling still apply at the next request through Redis
   * markers; this bounds staleness only if such a marker is lost. 0 reads Postgres on every request.
   * @defaultValue 10 000 ms
   */
  PARLEY_AUTH_CACHE_MS: z.coerce.number().int().min(0).max(300_000).default(10_000),
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
  /** How long a model's digest (the cache key's model identity) is trusted before /api/tags is asked again. @defaultValue 10 s */
  PARLEY_CACHE_DIGEST_TTL_MS: z.coerce.number().int().min(0).default(10_000),
  /**
   * Per-role caps on metered jobs, as JSON merged over the defaults field by field, e.g.
   * `{"member":{"models":["smollm2:135m"],"maxNumPredict":512}}`. See `roleCapDefaults` and docs/ollama.md.
   */
  PARLEY_ROLE_CAPS: z.string().default('{}'),
  /** The llm.chat handler checks the owner's token budget every this many streamed tokens. @defaultValue 16 */
  PARLEY_BUDGET_CHECK_TOKENS: z.coerce.number().int().min(1).max(4096).default(16),
  /** model.pull gives up after this long in all. @defaultValue 2 h: a multi-GB model on a slow link. */
  PARLEY_MODEL_PULL_TIMEOUT_MS: z.coerce.number().int().min(1000).default(2 * 3_600_000),
  /** model.pull gives up when Ollama reports nothing for this long. @defaultValue 60 s */
  PARLEY_MODEL_PULL_IDLE_TIMEOUT_MS: z.coerce.number().int().min(100).default(60_000),
  /** keep_alive of POST /v1/models/:name/load when the body names none. @defaultValue 30m */
  PARLEY_MODEL_LOAD_KEEP_ALIVE: z.string().regex(/^(0|-?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+)$/).default('30m'),
  /** Where local data lives (the services manager uses the same variable). @defaultValue `.data` in the checkout */
  PARLEY_DATA_DIR: z.string().optional(),
  /** The vector store: a folder, or an object-store URI (s3://…, gs://…, az://…). @defaultValue `<data dir>/lancedb` */
  PARLEY_LANCEDB_URI: z.string().min(1).optional(),
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
  PARLEY_CODE_BATCH_BYTES: z.coerce.number().int().min(1024).default(64 * 1024),
  /** Files larger than this are skipped as too large. @defaultValue 1 MiB */
  PARLEY_CODE_MAX_FILE_BYTES: z.coerce.number().int().min(1).default(1024 * 1024),
  /** Indexable files per repository. @defaultValue 100 000 */
  PARLEY_CODE_MAX_FILES: z.coerce.number().int().min(1).default(100_000),
  /** Uploaded archive caps: compressed bytes, unpacked bytes, file entries. @defaultValue 100 MiB, 1 GiB, 100 000 */
  PARLEY_CODE_ARCHIVE_MAX_BYTES: z.coerce.number().int().min(1).default(100 * 1024 * 1024),
  PARLEY_CODE_ARCHIVE_MAX_UNPACKED_BYTES: z.coerce.number().int().min(1).default(1024 * 1024 * 1024),
  PARLEY_CODE_ARCHIVE_MAX_FILES: z.coerce.number().int().min(1).default(100_000),
  /** Rows from which a vector table gets an ANN index (below, a flat scan is faster). @defaultValue 20 000 */
  PARLEY_VECTOR_INDEX_MIN_ROWS: z.coerce.number().int().min(256).default(20_000),
  /** The ANN index type. @defaultValue hnsw_sq */
  PARLEY_VECTOR_INDEX: z.enum(['hnsw_sq', 'ivf_pq']).default('hnsw_sq'),
  /** Table versions younger than this are kept for readers in flight; older ones are removed. @defaultValue 10 s */
  PARLEY_LANCEDB_VERSION_RETENTION_S: z.coerce.number().min(0).default(10),
  /** How often the vector maintenance job runs. @defaultValue 600 s */
  PARLEY_VECTORS_MAINTAIN_INTERVAL_S: z.coerce.number().int().min(1).default(600),
  /** A retired index generation's table is dropped this long after the switch. @defaultValue 600 s */
  PARLEY_VECTORS_RETIRED_GRACE_S: z.coerce.number().int().min(0).default(600),
});

export type Config = ReturnType<typeof loadConfig>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env) {
  const parsed = Env.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n');
    throw new Error(`invalid configuration:\n${lines}`);
  }
  const e = parsed.data;
  return {
    env: e.PARLEY_ENV,
    logLevel: e.LOG_LEVEL,
    port: e.PORT,
    redisUrl: e.REDIS_URL,
    databaseUrl: e.DATABASE_URL,
    mongoUrl: e.MONGODB_URL,
    keyPrefix: e.PARLEY_KEY_PREFIX,
    ollama: {
      host: e.OLLAMA_HOST.includes('://') ? e.OLLAMA_HOST : `http://${e.OLLAMA_HOST}`,
      chatModel: e.PARLEY_CHAT_MODEL,
      embedModel: e.PARLEY_EMBED_MODEL,
      defaultNumPredict: e.PARLEY_DEFAULT_NUM_PREDICT,
      connectTimeoutMs: e.OLLAMA_CONNECT_TIMEOUT_MS,
      firstTokenTimeoutMs: e.OLLAMA_FIRST_TOKEN_TIMEOUT_MS,
      idleTimeoutMs: e.OLLAMA_IDLE_TIMEOUT_MS,
      hosts: (e.OLLAMA_HOSTS ? e.OLLAMA_HOSTS.split(',').map((h) => h.trim()).filter(Boolean) : [e.OLLAMA_HOST]).map((h) => (h.includes('://') ? h : `http://${h}`).replace(/\/+$/, '')),
      keepAliveMs: e.OLLAMA_KEEPALIVE_MS,
      maxSockets: e.OLLAMA_MAX_SOCKETS,
      retry: { attempts: e.OLLAMA_RETRY_ATTEMPTS, baseMs: e.OLLAMA_RETRY_BASE_MS, maxMs: e.OLLAMA_RETRY_MAX_MS, overloadMaxWaitMs: e.OLLAMA_OVERLOAD_MAX_WAIT_MS },
      breaker: { failureThreshold: e.OLLAMA_BREAKER_FAILURES, cooldownMs: e.OLLAMA_BREAKER_COOLDOWN_MS },
      concurrency: { initial: e.OLLAMA_CONCURRENCY_INITIAL, min: e.OLLAMA_CONCURRENCY_MIN, max: Math.max(e.OLLAMA_CONCURRENCY_MIN, e.OLLAMA_CONCURRENCY_MAX), latencyRatio: e.OLLAMA_TTFT_CONGESTION_RATIO },
      status: { intervalMs: e.OLLAMA_STATUS_INTERVAL_MS, timeoutMs: e.OLLAMA_STATUS_TIMEOUT_MS },
      digestTtlMs: e.PARLEY_CACHE_DIGEST_TTL_MS,
    },
    workers: {
      concurrency: parseConcurrency(e.PARLEY_CONCURRENCY),
      chunkThreads: e.PARLEY_CHUNK_THREADS,
      lockMs: e.PARLEY_LOCK_MS,
      stalledIntervalMs: e.PARLEY_STALLED_INTERVAL_MS,
      agingMs: e.PARLEY_AGING_MS,
      sweepIntervalMs: e.PARLEY_SWEEP_INTERVAL_MS,
      shutdownGraceMs: e.PARLEY_SHUTDOWN_GRACE_MS,
    },
    streams: { ttlSeconds: e.PARLEY_STREAM_TTL_S, maxLen: e.PARLEY_STREAM_MAXLEN },
    cache: { enabled: e.PARLEY_CACHE, chatTtlS: e.PARLEY_CACHE_CHAT_TTL_S, embedTtlS: e.PARLEY_CACHE_EMBED_TTL_S },
    auth: {
      accessTtlSeconds: e.PARLEY_ACCESS_TOKEN_TTL_S,
      refreshTtlSeconds: e.PARLEY_REFRESH_TOKEN_TTL_S,
      issuer: e.PARLEY_JWT_ISSUER,
      audience: e.PARLEY_JWT_AUDIENCE,
      credentialCacheMs: e.PARLEY_AUTH_CACHE_MS,
      bootstrapAdmin: e.PARLEY_BOOTSTRAP_ADMIN_USER && e.PARLEY_BOOTSTRAP_ADMIN_PASSWORD ? { username: e.PARLEY_BOOTSTRAP_ADMIN_USER, password: e.PARLEY_BOOTSTRAP_ADMIN_PASSWORD } : undefined,
    },
    http: {
      bodyLimit: e.PARLEY_BODY_LIMIT,
      jsonMaxDepth: e.PARLEY_JSON_MAX_DEPTH,
      requestTimeoutMs: e.PARLEY_REQUEST_TIMEOUT_MS,
      corsOrigins: e.PARLEY_CORS_ORIGINS,
      dashboard: e.PARLEY_DASHBOARD,
      trustProxy: e.PARLEY_TRUST_PROXY,
      hsts: e.PARLEY_HSTS,
    },
    rateLimits: {
      windowMs: e.PARLEY_RATE_WINDOW_S * 1000,
      token: { perIp: e.PARLEY_RATE_TOKEN_PER_IP, perUsername: e.PARLEY_RATE_TOKEN_PER_USERNAME },
      jobs: { write: e.PARLEY_RATE_JOBS_WRITE, read: e.PARLEY_RATE_JOBS_READ },
      api: { write: e.PARLEY_RATE_API_WRITE, read: e.PARLEY_RATE_API_READ },
    },
    roleCaps: parseRoleCaps(e.PARLEY_ROLE_CAPS, { chatModel: e.PARLEY_CHAT_MODEL, embedModel: e.PARLEY_EMBED_MODEL }),
    budgets: { checkEveryTokens: e.PARLEY_BUDGET_CHECK_TOKENS },
    modelOps: { pullTimeoutMs: e.PARLEY_MODEL_PULL_TIMEOUT_MS, pullIdleTimeoutMs: e.PARLEY_MODEL_PULL_IDLE_TIMEOUT_MS, loadKeepAlive: e.PARLEY_MODEL_LOAD_KEEP_ALIVE },
    vectors: {
      uri: e.PARLEY_LANCEDB_URI ?? `${dataDir(e.PARLEY_DATA_DIR)}/lancedb`,
      vectorIndexMinRows: e.PARLEY_VECTOR_INDEX_MIN_ROWS,
      vectorIndex: e.PARLEY_VECTOR_INDEX,
      versionRetentionMs: e.PARLEY_LANCEDB_VERSION_RETENTION_S * 1000,
      maintainIntervalMs: e.PARLEY_VECTORS_MAINTAIN_INTERVAL_S * 1000,
      retiredGraceMs: e.PARLEY_VECTORS_RETIRED_GRACE_S * 1000,
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
      archive: { maxBytes: e.PARLEY_CODE_ARCHIVE_MAX_BYTES, maxUnpackedBytes: e.PARLEY_CODE_ARCHIVE_MAX_UNPACKED_BYTES, maxFiles: e.PARLEY_CODE_ARCHIVE_MAX_FILES },
    },
  };
}

/** The data folder: PARLEY_DATA_DIR, else `.data` at the root of this checkout. */
function dataDir(configured: string | undefined): string {
  return configured ?? fileURLToPath(new URL('../.data', import.meta.url));
}

const defaultConcurrency = { llm: 4, embed: 2, code: 2, system: 32, models: 1 } as const;

function parseConcurrency(spec: string): Record<keyof typeof defaultConcurrency, number> {
  const out: Record<string, number> = { ...defaultConcurrency };
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
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
}

/**
 * Defaults per role. Members get the two configured models and bounds that fit
 * a small shared box; operators and admins every installed model and more room.
 */
export function roleCapDefaults(models: { chatModel: string; embedModel: string }): Record<CapRole, RoleCap> {
  const own = [models.chatModel, models.embedModel];
  return {
    admin: { models: '*', maxNumPredict: 8192, maxNumCtx: 32_768, maxPromptChars: 400_000, maxConcurrentJobs: 32 },
    operator: { models: '*', maxNumPredict: 4096, maxNumCtx: 16_384, maxPromptChars: 200_000, maxConcurrentJobs: 16 },
    member: { models: own, maxNumPredict: 2048, maxNumCtx: 8192, maxPromptChars: 100_000, maxConcurrentJobs: 16 },
    viewer: { models: own, maxNumPredict: 512, maxNumCtx: 2048, maxPromptChars: 8000, maxConcurrentJobs: 1 },
  };
}

const RoleCapSpec = z
  .object({
    models: z.union([z.literal('*'), z.array(z.string().min(1).max(200)).max(500)]),
    maxNumPredict: z.number().int().min(1).max(32_768),
    maxNumCtx: z.number().int().min(128).max(131_072),
    maxPromptChars: z.number().int().min(1),
    maxConcurrentJobs: z.number().int().min(1),
  })
  .partial()
  .strict();
const RoleCapsSpec = z.object(Object.fromEntries(capRoles.map((r) => [r, RoleCapSpec.optional()])) as Record<CapRole, z.ZodOptional<typeof RoleCapSpec>>).strict();

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
