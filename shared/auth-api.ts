/**
 * Accounts and access over HTTP: roles, permission names, and the shapes of
 * the /v1/auth and /v1/admin/users routes. Which role holds which permission
 * is server policy (api/auth/permissions.ts); the names are the contract.
 */
import { z } from 'zod';
import { Instant } from './params.ts';

export const Role = z.enum(['admin', 'operator', 'member', 'viewer']);
export type Role = z.infer<typeof Role>;

export const Permission = z.enum([
  'jobs:read',
  'jobs:submit',
  'jobs:cancel',
  'jobs:retry',
  'jobs:any',
  'sessions:self',
  'apikeys:self',
  'users:manage',
  'audit:read',
  'queues:read',
  'queues:write',
  'metrics:read',
  'models:read',
  'models:manage',
  'models:admin',
  'usage:self',
  'usage:any',
  'discussions:read',
  'discussions:post',
  'discussions:write',
  'discussions:any',
  'code:read',
  'code:write',
  'code:any',
  'code:paths',
  'collections:read',
  'collections:write',
  'collections:any',
  'knowledge:read',
  'knowledge:write',
]);
export type Permission = z.infer<typeof Permission>;

/** Login names: what users type, so a plain, case-insensitively unique set of characters. */
export const Username = z
  .string()
  .min(3)
  .max(64)
  .regex(/^[A-Za-z0-9_.@-]+$/);
export type Username = z.infer<typeof Username>;

/** @defaultValue bounds 12..1024: long enough for a passphrase, short enough that hashing stays cheap. */
export const Password = z.string().min(12, 'must be at least 12 characters').max(1024, 'must be at most 1024 characters');

/** RFC 6749 §5.1. */
export const TokenResponse = z.object({
  access_token: z.string(),
  token_type: z.literal('Bearer'),
  expires_in: z.number(),
  refresh_token: z.string(),
  scope: z.string(),
});
export type TokenResponse = z.infer<typeof TokenResponse>;

/**
 * Every error of the token endpoint, as RFC 6749 §5.2 has it: `application/json` with `error` and
 * `error_description`; `code`, `status` and `requestId` are ours, as on every other error.
 */
export const OAuthError = z.object({
  error: z.enum([
    'invalid_request',
    'invalid_client',
    'invalid_grant',
    'unsupported_grant_type',
    'invalid_scope',
    'slow_down',
    'temporarily_unavailable',
    'server_error',
  ]),
  error_description: z.string(),
  status: z.number().int(),
  code: z.string(),
  requestId: z.string().optional(),
});
export type OAuthError = z.infer<typeof OAuthError>;

export const TokenRequest = z
  .record(z.string(), z.unknown())
  .describe('grant_type=password with username, password and optional scope; or grant_type=refresh_token with refresh_token');
/**
 * What the token endpoint's form takes, for the OpenAPI document: the endpoint itself reads the raw
 * form (TokenRequest), so that every mistake in it is answered as RFC 6749 §5.2 has it.
 */
export const TokenForm = z.discriminatedUnion('grant_type', [
  z
    .object({
      grant_type: z.literal('password'),
      username: z.string().min(1).max(256),
      password: z.string().min(1).max(1024),
      scope: z.string().max(2000).optional(),
    })
    .strict(),
  z.object({ grant_type: z.literal('refresh_token'), refresh_token: z.string().min(1).max(512) }).strict(),
]);

export const Me = z.object({
  id: z.uuid().toLowerCase(),
  username: z.string(),
  role: Role,
  permissions: z.array(z.string()),
  authenticatedWith: z.enum(['user', 'apiKey']),
});
export type Me = z.infer<typeof Me>;

export const Session = z.object({
  id: z.uuid().toLowerCase(),
  current: z.boolean(),
  createdAt: z.string(),
  lastUsedAt: z.string(),
  expiresAt: z.string(),
  ip: z.string().nullable(),
  userAgent: z.string().nullable(),
});
export type Session = z.infer<typeof Session>;
export const SessionList = z.object({ items: z.array(Session) });

const CreateApiKeyFields = z
  .object({
    name: z.string().min(1).max(100),
    /** Permissions the key carries; each must be one the calling credential holds. */
    scopes: z.array(Permission).min(1).optional(),
    /** Shorthand for the permissions of a role (at most those of the calling credential). */
    role: Role.optional(),
    /** Required (and at most the caller's own expiry) when the caller is itself an expiring API key. */
    expiresAt: Instant.optional(),
  })
  .strict();
export const CreateApiKey = CreateApiKeyFields.refine((b) => !(b.scopes && b.role), { message: 'give scopes or role, not both', path: ['role'] });
export type CreateApiKey = z.infer<typeof CreateApiKey>;
/** CreateApiKey as the OpenAPI document states it: `scopes` or `role`, never both. */
export const CreateApiKeyDocumented = z.union([CreateApiKeyFields.omit({ role: true }), CreateApiKeyFields.omit({ scopes: true })]);

export const ApiKey = z.object({
  id: z.uuid().toLowerCase(),
  name: z.string(),
  scopes: z.array(z.string()),
  createdAt: z.string(),
  expiresAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
});
export type ApiKey = z.infer<typeof ApiKey>;
export const ApiKeyList = z.object({ items: z.array(ApiKey) });
export const CreatedApiKey = ApiKey.pick({ id: true, name: true, scopes: true, expiresAt: true }).extend({ key: z.string() });
export type CreatedApiKey = z.infer<typeof CreatedApiKey>;

export const ChangePassword = z.object({ currentPassword: z.string().min(1).max(1024), newPassword: Password }).strict();
export type ChangePassword = z.infer<typeof ChangePassword>;
export const ResetPassword = z.object({ password: Password }).strict();
export type ResetPassword = z.infer<typeof ResetPassword>;
/** How many sessions a password change or reset revoked. */
export const PasswordChanged = z.object({ sessionsRevoked: z.number().int() });
export type PasswordChanged = z.infer<typeof PasswordChanged>;

export const NewUser = z.object({ username: Username, password: Password, role: Role }).strict();
export type NewUser = z.infer<typeof NewUser>;
export const CreatedUser = z.object({ id: z.uuid().toLowerCase(), username: z.string(), role: Role });
export const UserPatch = z
  .object({ role: Role.optional(), disabled: z.boolean().optional() })
  .strict()
  .refine((b) => b.role !== undefined || b.disabled !== undefined, { message: 'give role and/or disabled' })
  .meta({ minProperties: 1 });
export type UserPatch = z.infer<typeof UserPatch>;
export const UserView = z.object({ id: z.uuid().toLowerCase(), username: z.string(), role: Role, disabled: z.boolean() });
export const UserList = z.object({ items: z.array(UserView.extend({ createdAt: z.string() })) });
export type UserList = z.infer<typeof UserList>;

export const AuditOutcome = z.enum(['success', 'failure', 'denied']);
export const AuditQuery = z.object({
  action: z.string().max(64).optional(),
  actorId: z.uuid().toLowerCase().optional(),
  outcome: AuditOutcome.optional(),
  since: Instant.optional(),
  until: Instant.optional(),
  before: z.coerce.number().int().positive().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
export type AuditQuery = z.infer<typeof AuditQuery>;
export const AuditEventView = z.object({
  id: z.number().int(),
  at: z.string(),
  action: z.string(),
  outcome: AuditOutcome,
  actorId: z.string().nullable(),
  actorName: z.string().nullable(),
  ip: z.string().nullable(),
  userAgent: z.string().nullable(),
  targetType: z.string().nullable(),
  targetId: z.string().nullable(),
  details: z.record(z.string(), z.unknown()).nullable(),
});
export type AuditEventView = z.infer<typeof AuditEventView>;
export const AuditPage = z.object({ items: z.array(AuditEventView), nextBefore: z.number().nullable() });
export type AuditPage = z.infer<typeof AuditPage>;
