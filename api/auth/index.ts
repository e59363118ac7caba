/**
 * Identity, as small modules with one job each, wired once per process:
 *
 * - users.ts     accounts, roles, passwords, the bootstrap admin
 * - grants.ts    the token endpoint's password and refresh grants
 * - tokens.ts    verifying access tokens and API keys, rechecking live ones
 * - api-keys.ts  creating, listing, revoking and verifying API keys
 * - sessions.ts  opening, listing and revoking refresh sessions
 *
 * The SQL behind them is in platform/auth; the HTTP routes in api/routes/auth.ts.
 */
import type { Redis } from 'ioredis';
import { createApiKeyStore, createSessionStore, createUserStore } from '../../platform/auth/index.ts';
import type { Config } from '../../platform/config.ts';
import type { Db } from '../../platform/connections/index.ts';
import { createApiKeys } from './api-keys.ts';
import type { Audit } from './audit.ts';
import { createGrants } from './grants.ts';
import { createKeyRingCache } from './keyring.ts';
import { createSessions } from './sessions.ts';
import { createTokenVerifier, type AuthFailureListener } from './tokens.ts';
import { createUsers } from './users.ts';
import type { OnRevoked } from './revocation.ts';

export interface AuthDeps {
  db: Db;
  redis: Redis;
  config: Config;
  audit: Audit;
  keyPrefix: string;
  /** Hears every refused credential (metrics). */
  onFailure?: AuthFailureListener;
  /** Hears every credential ended (revoked session or key, role changed, account disabled), to end its live connections. */
  onRevoked?: OnRevoked;
}

export function createAuth(deps: AuthDeps) {
  const { db, redis, config, audit, keyPrefix, onFailure, onRevoked } = deps;
  const a = config.auth;
  const userStore = createUserStore(db);
  const sessionStore = createSessionStore(db);
  const keyring = createKeyRingCache(db, a.accessTtlSeconds);
  const sessions = createSessions({ store: sessionStore, users: userStore, redis, keyPrefix, audit, config: a, onRevoked });
  const apiKeys = createApiKeys({
    store: createApiKeyStore(db),
    users: userStore,
    redis,
    keyPrefix,
    audit,
    config: { credentialCacheMs: a.credentialCacheMs, maxPerUser: a.maxApiKeysPerUser },
    onRevoked,
  });
  const tokens = createTokenVerifier({ keyring, sessions, apiKeys, config: a, onFailure });
  const grants = createGrants({ users: userStore, sessionStore, sessions, keyring, audit, config: a, onFailure });
  const users = createUsers({ store: userStore, sessions, apiKeys, audit, config: a, onFailure, onRevoked });
  return { users, grants, tokens, apiKeys, sessions, keyring };
}

export type Auth = ReturnType<typeof createAuth>;
export type { ApiKeys } from './api-keys.ts';
export type { Grants } from './grants.ts';
export type { Sessions } from './sessions.ts';
export type { TokenVerifier } from './tokens.ts';
export type { Users } from './users.ts';
export type { OnRevoked, RevokedCredential } from './revocation.ts';
