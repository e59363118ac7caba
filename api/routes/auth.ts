import { z } from 'zod';
import { Problem } from '../../shared/index.ts';
import type { Db } from '../../platform/db.ts';
import { allPermissions, Role, type Permission } from '../auth/permissions.ts';
import { oauthError, Username, type AuthService } from '../auth/service.ts';
import { AppError } from '../http/app-error.ts';
import { route, type Route } from '../http/route.ts';

const problem = (description: string) => ({ description, schema: Problem, contentType: 'application/problem+json' });
const TokenResponse = z.object({ access_token: z.string(), token_type: z.literal('Bearer'), expires_in: z.number(), refresh_token: z.string(), scope: z.string() });
const TokenRequest = z.record(z.string(), z.unknown()).describe('grant_type=password with username, password and optional scope; or grant_type=refresh_token with refresh_token');
const User = z.object({ id: z.uuid(), username: z.string(), role: Role, permissions: z.array(z.string()), authenticatedWith: z.enum(['user', 'apiKey']) });
const Session = z.object({ id: z.uuid(), current: z.boolean(), createdAt: z.string(), lastUsedAt: z.string(), expiresAt: z.string(), ip: z.string().nullable(), userAgent: z.string().nullable() });
const ApiKeyBody = z
  .object({
    name: z.string().min(1).max(100),
    /** Permissions the key carries; each must be one your role holds. */
    scopes: z.array(z.enum(allPermissions as [Permission, ...Permission[]])).min(1).optional(),
    /** Shorthand for the permissions of a role (at most your own). */
    role: Role.optional(),
    expiresAt: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();
const ApiKey = z.object({ id: z.uuid(), name: z.string(), scopes: z.array(z.string()), createdAt: z.string(), expiresAt: z.string().nullable(), lastUsedAt: z.string().nullable(), revokedAt: z.string().nullable() });
const IdParams = z.object({ id: z.uuid() });
const NewUser = z.object({ username: Username, password: z.string().min(12).max(1024), role: Role }).strict();
const AuditQuery = z.object({
  action: z.string().max(64).optional(),
  actorId: z.uuid().optional(),
  outcome: z.enum(['success', 'failure', 'denied']).optional(),
  since: z.iso.datetime().optional(),
  until: z.iso.datetime().optional(),
  before: z.coerce.number().int().positive().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

/** `onIssued` hears every successful grant (password: a login; refresh_token), for metrics. */
export function authRoutes(deps: { auth: AuthService; db: Db; onIssued?: (grant: 'password' | 'refresh_token') => void }): Route[] {
  const { auth, db } = deps;
  return [
    route({
      method: 'post', path: '/v1/auth/token', tags: ['auth'], access: 'public', bodyType: 'form',
      summary: 'OAuth2 token endpoint (RFC 6749): password grant (§4.3) and refresh_token grant with rotation.',
      body: TokenRequest,
      responses: { 200: { description: 'Tokens (Cache-Control: no-store)', schema: TokenResponse }, 400: problem('invalid_request, invalid_grant or unsupported_grant_type'), 429: problem('Too many attempts') },
      async handle({ body, ip, userAgent }) {
        // RFC 6749 §3.2: parameters must not repeat (the form parser turns repeats into arrays).
        const repeated = Object.keys(body).filter((k) => Array.isArray(body[k]));
        if (repeated.length) throw oauthError('invalid_request', `repeated parameter: ${repeated.join(', ').slice(0, 100)}`);
        const str = (k: string) => (typeof body[k] === 'string' && body[k] !== '' ? (body[k] as string) : undefined);
        const grant = str('grant_type');
        const meta = { ip, userAgent };
        let tokens;
        if (grant === 'password') {
          const username = str('username');
          const password = str('password');
          if (!username || !password) throw oauthError('invalid_request', 'username and password are required');
          tokens = await auth.passwordGrant({ username, password, scope: str('scope') }, meta);
        } else if (grant === 'refresh_token') {
          const token = str('refresh_token');
          if (!token) throw oauthError('invalid_request', 'refresh_token is required');
          tokens = await auth.refreshGrant(token, meta);
        } else if (!grant) {
          throw oauthError('invalid_request', 'grant_type is required');
        } else {
          throw oauthError('unsupported_grant_type', `grant_type ${grant.slice(0, 40)} is not supported`);
        }
        deps.onIssued?.(grant === 'password' ? 'password' : 'refresh_token');
        return { status: 200, body: tokens, headers: { 'Cache-Control': 'no-store', Pragma: 'no-cache' } };
      },
    }),
    route({
      method: 'get', path: '/v1/auth/me', tags: ['auth'], access: 'sessions:self',
      summary: 'The authenticated user.',
      responses: { 200: { description: 'You', schema: User } },
      async handle({ actor }) {
        const a = actor!;
        return { status: 200, body: { id: a.userId, username: a.username, role: a.role, permissions: [...a.permissions], authenticatedWith: a.kind } };
      },
    }),
    route({
      method: 'get', path: '/v1/auth/sessions', tags: ['auth'], access: 'sessions:self',
      summary: 'Your active sessions.',
      responses: { 200: { description: 'Sessions', schema: z.object({ items: z.array(Session) }) } },
      async handle({ actor }) {
        return { status: 200, body: { items: await auth.listSessions(actor!) } };
      },
    }),
    route({
      method: 'delete', path: '/v1/auth/sessions', tags: ['auth'], access: 'sessions:self',
      summary: 'Revoke all your sessions (log out everywhere).',
      responses: { 200: { description: 'Revoked', schema: z.object({ revoked: z.number() }) } },
      async handle({ actor, ip, userAgent }) {
        return { status: 200, body: { revoked: await auth.revokeSessions(actor!, undefined, { ip, userAgent }) } };
      },
    }),
    route({
      method: 'delete', path: '/v1/auth/sessions/:id', tags: ['auth'], access: 'sessions:self',
      summary: 'Revoke one of your sessions.',
      params: IdParams,
      responses: { 204: { description: 'Revoked' }, 404: problem('Not one of your sessions') },
      async handle({ actor, params, ip, userAgent }) {
        await auth.revokeSessions(actor!, params.id, { ip, userAgent });
        return { status: 204 };
      },
    }),
    route({
      method: 'post', path: '/v1/auth/logout', tags: ['auth'], access: 'sessions:self',
      summary: 'Revoke the current session; its access and refresh tokens stop working.',
      responses: { 204: { description: 'Logged out' } },
      async handle({ actor, ip, userAgent }) {
        if (!actor!.sessionId) throw new AppError('INVALID_STATE', { detail: 'API keys have no session; revoke the key instead' });
        await auth.revokeSessions(actor!, actor!.sessionId, { ip, userAgent }, 'auth.logout');
        return { status: 204 };
      },
    }),
    route({
      method: 'get', path: '/v1/auth/api-keys', tags: ['auth'], access: 'apikeys:self',
      summary: 'Your API keys (never their secrets).',
      responses: { 200: { description: 'Keys', schema: z.object({ items: z.array(ApiKey) }) } },
      async handle({ actor }) {
        return { status: 200, body: { items: await auth.listApiKeys(actor!) } };
      },
    }),
    route({
      method: 'post', path: '/v1/auth/api-keys', tags: ['auth'], access: 'apikeys:self',
      summary: 'Create an API key scoped to permissions your role holds. The key is shown once.',
      body: ApiKeyBody,
      responses: { 201: { description: 'Created; `key` is shown only now', schema: ApiKey.pick({ id: true, name: true, scopes: true, expiresAt: true }).extend({ key: z.string() }) }, 403: problem('Scope beyond your role') },
      async handle({ actor, body, ip, userAgent }) {
        return { status: 201, body: await auth.createApiKey(actor!, body, { ip, userAgent }), headers: { 'Cache-Control': 'no-store' } };
      },
    }),
    route({
      method: 'delete', path: '/v1/auth/api-keys/:id', tags: ['auth'], access: 'apikeys:self',
      summary: 'Revoke an API key.',
      params: IdParams,
      responses: { 204: { description: 'Revoked' }, 404: problem('No such key of yours') },
      async handle({ actor, params, ip, userAgent }) {
        await auth.revokeApiKey(actor!, params.id, { ip, userAgent });
        return { status: 204 };
      },
    }),
    route({
      method: 'post', path: '/v1/admin/users', tags: ['admin'], access: 'users:manage',
      summary: 'Create a user.',
      body: NewUser,
      responses: { 201: { description: 'Created', schema: z.object({ id: z.uuid(), username: z.string(), role: Role }) }, 409: problem('Username taken') },
      async handle({ actor, body, ip, userAgent }) {
        const u = await auth.createUser(body, { actor, meta: { ip, userAgent } });
        return { status: 201, body: { id: u.id, username: u.username, role: u.role } };
      },
    }),
    route({
      method: 'get', path: '/v1/admin/users', tags: ['admin'], access: 'users:manage',
      summary: 'List users.',
      responses: { 200: { description: 'Users', schema: z.object({ items: z.array(z.object({ id: z.uuid(), username: z.string(), role: Role, disabled: z.boolean(), createdAt: z.string() })) }) } },
      async handle() {
        const rows = await db('users').select('id', 'username', 'role', 'disabled', 'created_at').orderBy('created_at');
        return { status: 200, body: { items: rows.map((r) => ({ id: r.id, username: r.username, role: r.role, disabled: r.disabled, createdAt: (r.created_at as Date).toISOString() })) } };
      },
    }),
    route({
      method: 'patch', path: '/v1/admin/users/:id', tags: ['admin'], access: 'users:manage',
      summary: "Change a user's role, or disable the account (which revokes its sessions at once).",
      params: IdParams,
      body: z.object({ role: Role.optional(), disabled: z.boolean().optional() }).strict().refine((b) => b.role !== undefined || b.disabled !== undefined, { message: 'give role and/or disabled' }),
      responses: { 200: { description: 'Updated', schema: z.object({ id: z.uuid(), username: z.string(), role: Role, disabled: z.boolean() }) }, 404: problem('No such user') },
      async handle({ actor, params, body, ip, userAgent }) {
        const u = await auth.updateUser(actor!, params.id, body, { ip, userAgent });
        return { status: 200, body: { id: u.id, username: u.username, role: u.role, disabled: u.disabled } };
      },
    }),
    route({
      method: 'get', path: '/v1/admin/audit', tags: ['admin'], access: 'audit:read',
      summary: 'The audit log, newest first; filter by action, actor, outcome and time; page with `before` (an event id).',
      query: AuditQuery,
      responses: { 200: { description: 'Events', schema: z.object({ items: z.array(z.record(z.string(), z.unknown())), nextBefore: z.number().nullable() }) } },
      async handle({ query }) {
        const q = db('audit_events').select('*').orderBy('id', 'desc').limit(query.limit + 1);
        if (query.action) q.where('action', query.action);
        if (query.actorId) q.where('actor_id', query.actorId);
        if (query.outcome) q.where('outcome', query.outcome);
        if (query.since) q.where('at', '>=', query.since);
        if (query.until) q.where('at', '<', query.until);
        if (query.before) q.where('id', '<', query.before);
        const rows = await q;
        const page = rows.slice(0, query.limit);
        return {
          status: 200,
          body: {
            items: page.map((r) => ({ id: r.id, at: (r.at as Date).toISOString(), action: r.action, outcome: r.outcome, actorId: r.actor_id, actorName: r.actor_name, ip: r.ip, userAgent: r.user_agent, targetType: r.target_type, targetId: r.target_id, details: r.details })),
            nextBefore: rows.length > query.limit ? (page.at(-1)?.id as number) : null,
          },
        };
      },
    }),
  ];
}
