/**
 * Accounts and access data: users, sessions and their refresh tokens, API
 * keys, signing keys, the audit log, and retention of what grows with use.
 * Every SQL statement about identity lives here; api/auth holds the rules.
 */
export { createApiKeyStore } from './api-keys.ts';
export type { ApiKeyRow, ApiKeyStore } from './api-keys.ts';
export { createAuditLog } from './audit-log.ts';
export type { AuditLog, AuditRow } from './audit-log.ts';
export { purgeAuthRecords } from './retention.ts';
export type { RetentionPolicy } from './retention.ts';
export { createSessionStore } from './sessions.ts';
export type { SessionRow, SessionStore } from './sessions.ts';
export { insertSigningKey, rotateSigningKeys, signingKeys } from './signing-keys.ts';
export type { NewSigningKey, SigningKeyRow } from './signing-keys.ts';
export { UNIQUE_VIOLATION, createUserStore } from './users.ts';
export type { UserRow, UserStore } from './users.ts';
