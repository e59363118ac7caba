/**
 * /v1/auth (the token endpoint, who you are, your sessions and API keys) and
 * /v1/admin/users and /v1/admin/audit. Declarations plus one call each; the
 * rules live in api/auth, the SQL in platform/auth.
 */
import type { AuditLog } from '../../platform/auth/index.ts';
import {
  ApiKeyList,
  AuditPage,
  ChangePassword,
  OAuthError,
  PasswordChanged,
  ResetPassword,
  AuditQuery,
  CreateApiKey,
  CreateApiKeyDocumented,
  CreatedApiKey,
  CreatedUser,
  Me,
  NewUser,
  SessionList,
  TokenForm,
  TokenRequest,
  TokenResponse,
  UserList,
  UserPatch,
  UserView,
  IdParams,
  Revoked,
} from '../../shared/index.ts';
import type { Auth } from '../auth/index.ts';
import { oauthError } from '../auth/token-endpoint.ts';
import { AppError } from '../domain/errors.ts';
import { authorize } from '../http/mount.ts';
import { problem, route, type Route } from '../http/route.ts';

/**
 * HTTP Basic client credentials (RFC 6749 §2.3.1: `client_id:client_secret`, each form-urlencoded, in
 * base64): the client id, undefined without a Basic header, or 'malformed'.
 */
function basicClient(authorization: string | undefined): string | undefined | 'malformed' {
  const m = /^basic(?:\s+(\S*))?\s*$/i.exec(authorization ?? '');
  if (!m) return undefined;
  const encoded = m[1] ?? '';
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) return 'malformed';
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 1) return 'malformed';
  try {
    return decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
  } catch {
    return 'malformed';
  }
}

/** §5.2: a client that authenticated through the Authorization header is answered in that header's scheme. */
const invalidClient = (description: string) =>
  new AppError('UNAUTHENTICATED', {
    detail: description,
    headers: { 'WWW-Authenticate': 'Basic realm="parley", charset="UTF-8"' },
  });

/** The token endpoint's errors are RFC 6749 §5.2 JSON, not problem+json. */
const oauth = (description: string) => ({ description, schema: OAuthError, contentType: 'application/json' });

/** `onIssued` hears every successful grant (password: a login; refresh_token), for metrics. */
export function authRoutes(deps: { auth: Auth; auditLog: AuditLog; onIssued?: (grant: 'password' | 'refresh_token') => void }): Route[] {
  const { auth, auditLog } = deps;
  return [
    route({
      method: 'post',
      path: '/v1/auth/token',
      operationId: 'createToken',
      tags: ['auth'],
      access: 'public',
      bodyType: 'form',
      clientAuth: true,
      summary: 'OAuth2 token endpoint (RFC 6749): password grant (§4.3) and refresh_token grant with rotation.',
      description:
        "Parley's clients are public (§2.1): a client may identify itself with `client_id` in the form or with HTTP Basic (§2.3.1: the id, a colon and an empty or any secret, as OAuth2 libraries send it); neither is verified or needed.",
      body: TokenRequest,
      documentedBody: TokenForm,
      responses: {
        200: { description: 'Tokens (Cache-Control: no-store)', schema: TokenResponse },
        400: oauth('invalid_request, invalid_grant, invalid_scope or unsupported_grant_type'),
        401: oauth('invalid_client: an unusable Authorization header was sent (a malformed Basic header: WWW-Authenticate: Basic)'),
        413: oauth('invalid_request: the form is larger than 16 KB (PAYLOAD_TOO_LARGE)'),
        415: oauth('invalid_request: the form is in a charset other than UTF-8 or an encoding not taken (UNSUPPORTED_MEDIA_TYPE)'),
        429: oauth('slow_down: too many attempts from this address or for this username (Retry-After)'),
      },
      async handle({ body, ip, userAgent, headers }) {
        // RFC 6749 §3.2: parameters must not repeat (the form parser turns repeats into arrays).
        const repeated = Object.keys(body).filter((k) => Array.isArray(body[k]));
        if (repeated.length) throw oauthError('invalid_request', `repeated parameter: ${repeated.join(', ').slice(0, 100)}`);
        const client = basicClient(headers.authorization);
        if (client === 'malformed') throw invalidClient('The Basic credentials are not base64 of "client_id:client_secret"');
        // §2.3: one way to authenticate a client per request.
        if (client && (body.client_id !== undefined || body.client_secret !== undefined))
          throw oauthError('invalid_request', 'client credentials in both the Authorization header and the form; use one');
        const str = (k: string) => (typeof body[k] === 'string' && body[k] !== '' ? (body[k] as string) : undefined);
        const grant = str('grant_type');
        const meta = { ip, userAgent };
        let tokens;
        if (grant === 'password') {
          const username = str('username');
          const password = str('password');
          if (!username || !password) throw oauthError('invalid_request', 'username and password are required');
          tokens = await auth.grants.password({ username, password, scope: str('scope') }, meta);
        } else if (grant === 'refresh_token') {
          const token = str('refresh_token');
          if (!token) throw oauthError('invalid_request', 'refresh_token is required');
          tokens = await auth.grants.refresh(token, meta, str('scope'));
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
      method: 'get',
      path: '/v1/auth/me',
      operationId: 'getMe',
      tags: ['auth'],
      access: 'sessions:self',
      summary: 'The authenticated user.',
      responses: { 200: { description: 'You', schema: Me } },
      async handle({ actor }) {
        const a = actor;
        return { status: 200, body: { id: a.userId, username: a.username, role: a.role, permissions: [...a.permissions], authenticatedWith: a.kind } };
      },
    }),
    route({
      method: 'get',
      path: '/v1/auth/sessions',
      operationId: 'listSessions',
      tags: ['auth'],
      access: 'sessions:self',
      summary: 'Your active sessions.',
      responses: { 200: { description: 'Sessions', schema: SessionList } },
      async handle({ actor }) {
        return { status: 200, body: { items: await auth.sessions.list(actor) } };
      },
    }),
    route({
      method: 'delete',
      path: '/v1/auth/sessions',
      operationId: 'revokeAllSessions',
      tags: ['auth'],
      access: 'sessions:self',
      summary: 'Revoke all your sessions (log out everywhere).',
      responses: { 200: { description: 'Revoked', schema: Revoked } },
      async handle({ actor, ip, userAgent }) {
        return { status: 200, body: { revoked: await auth.sessions.revokeOwn(actor, undefined, { ip, userAgent }) } };
      },
    }),
    route({
      method: 'delete',
      path: '/v1/auth/sessions/:id',
      operationId: 'revokeSession',
      tags: ['auth'],
      // A credential may always end its own session, whatever its scope; another session needs sessions:self.
      access: 'authenticated',
      summary: 'Revoke one of your sessions. Any session may revoke itself; revoking another needs `sessions:self`.',
      params: IdParams,
      responses: {
        204: { description: 'Revoked' },
        403: problem('Another session, and the credential lacks the `sessions:self` permission (FORBIDDEN)'),
        404: problem('Not one of your sessions'),
      },
      async handle({ actor, params, ip, userAgent }) {
        if (params.id !== actor.sessionId) authorize(actor, 'sessions:self');
        await auth.sessions.revokeOwn(actor, params.id, { ip, userAgent });
        return { status: 204 };
      },
    }),
    route({
      method: 'post',
      path: '/v1/auth/logout',
      operationId: 'logout',
      tags: ['auth'],
      // Ending your own session needs no permission: a session narrowed by `scope` can log out too.
      access: 'authenticated',
      summary: 'Revoke the current session; its access and refresh tokens stop working. Any session may, whatever its scope.',
      responses: {
        204: { description: 'Logged out' },
        409: problem('Called with an API key, which has no session: revoke the key instead (INVALID_STATE)'),
      },
      async handle({ actor, ip, userAgent }) {
        if (!actor.sessionId) throw new AppError('INVALID_STATE', { detail: 'API keys have no session; revoke the key instead' });
        await auth.sessions.revokeOwn(actor, actor.sessionId, { ip, userAgent }, 'auth.logout');
        return { status: 204 };
      },
    }),
    route({
      method: 'post',
      path: '/v1/auth/password',
      operationId: 'changePassword',
      tags: ['auth'],
      access: 'sessions:self',
      summary:
        'Change your password, given the current one. Your other sessions are revoked; this one stays. Needs a session, not an API key. Wrong current passwords spend the account failed-login budget, shared with the token endpoint.',
      body: ChangePassword,
      responses: {
        200: { description: 'Changed', schema: PasswordChanged },
        400: problem('Wrong current password, or a new one of the wrong length'),
        403: problem('Called with an API key'),
        409: problem('The password was changed by another request meanwhile; the current password given is no longer current (INVALID_STATE)'),
        429: problem('Too many failed sign-ins or wrong current passwords for this account (RATE_LIMITED; shares the failed-login budget)'),
      },
      async handle({ actor, body, ip, userAgent }) {
        return { status: 200, body: await auth.users.changePassword(actor, body, { ip, userAgent }), headers: { 'Cache-Control': 'no-store' } };
      },
    }),
    route({
      method: 'get',
      path: '/v1/auth/api-keys',
      operationId: 'listApiKeys',
      tags: ['auth'],
      access: 'apikeys:self',
      summary: 'Your API keys (never their secrets).',
      responses: { 200: { description: 'Keys', schema: ApiKeyList } },
      async handle({ actor }) {
        return { status: 200, body: { items: await auth.apiKeys.list(actor) } };
      },
    }),
    route({
      method: 'post',
      path: '/v1/auth/api-keys',
      operationId: 'createApiKey',
      tags: ['auth'],
      access: 'apikeys:self',
      summary:
        'Create an API key within the calling credential: its scopes, and (when a key calls) no later expiry. At most PARLEY_MAX_API_KEYS_PER_USER live keys per user. The key is shown once.',
      body: CreateApiKey,
      documentedBody: CreateApiKeyDocumented,
      responses: {
        201: { description: 'Created; `key` is shown only now', schema: CreatedApiKey },
        400: problem('Invalid name, scopes or expiry'),
        403: problem('Scopes beyond the calling credential, or an expiry past the calling key'),
        422: problem('You hold the most live API keys allowed'),
      },
      async handle({ actor, body, ip, userAgent }) {
        return { status: 201, body: await auth.apiKeys.create(actor, body, { ip, userAgent }), headers: { 'Cache-Control': 'no-store' } };
      },
    }),
    route({
      method: 'delete',
      path: '/v1/auth/api-keys/:id',
      operationId: 'revokeApiKey',
      tags: ['auth'],
      access: 'apikeys:self',
      summary: 'Revoke an API key.',
      params: IdParams,
      responses: { 204: { description: 'Revoked' }, 404: problem('No such key of yours') },
      async handle({ actor, params, ip, userAgent }) {
        await auth.apiKeys.revoke(actor, params.id, { ip, userAgent });
        return { status: 204 };
      },
    }),
    route({
      method: 'post',
      path: '/v1/admin/users',
      operationId: 'createUser',
      tags: ['admin'],
      access: 'users:manage',
      summary: 'Create a user.',
      body: NewUser,
      responses: { 201: { description: 'Created', schema: CreatedUser }, 409: problem('Username taken') },
      async handle({ actor, body, ip, userAgent }) {
        const u = await auth.users.create(body, { actor, meta: { ip, userAgent } });
        return { status: 201, body: { id: u.id, username: u.username, role: u.role } };
      },
    }),
    route({
      method: 'get',
      path: '/v1/admin/users',
      operationId: 'listUsers',
      tags: ['admin'],
      access: 'users:manage',
      summary: 'List users.',
      responses: { 200: { description: 'Users', schema: UserList } },
      async handle() {
        return { status: 200, body: await auth.users.list() };
      },
    }),
    route({
      method: 'patch',
      path: '/v1/admin/users/:id',
      operationId: 'updateUser',
      tags: ['admin'],
      access: 'users:manage',
      summary: "Change a user's role, or disable the account (which revokes its sessions at once).",
      params: IdParams,
      body: UserPatch,
      responses: {
        200: { description: 'Updated', schema: UserView },
        404: problem('No such user'),
        409: problem('The change would leave no enabled admin'),
      },
      async handle({ actor, params, body, ip, userAgent }) {
        const u = await auth.users.update(actor, params.id, body, { ip, userAgent });
        return { status: 200, body: { id: u.id, username: u.username, role: u.role, disabled: u.disabled } };
      },
    }),
    route({
      method: 'post',
      path: '/v1/admin/users/:id/password',
      operationId: 'resetUserPassword',
      tags: ['admin'],
      access: 'users:manage',
      summary: "Set a user's password (a reset) and revoke every session of the account. API keys stay; disable the account to stop those too. Audited.",
      params: IdParams,
      body: ResetPassword,
      responses: { 200: { description: 'Reset', schema: PasswordChanged }, 404: problem('No such user') },
      async handle({ actor, params, body, ip, userAgent }) {
        const { sessionsRevoked } = await auth.users.resetPassword({ id: params.id }, body.password, { actor, meta: { ip, userAgent } });
        return { status: 200, body: { sessionsRevoked } };
      },
    }),
    route({
      method: 'get',
      path: '/v1/admin/audit',
      operationId: 'listAuditEvents',
      tags: ['admin'],
      access: 'audit:read',
      summary: 'The audit log, newest first; filter by action, actor, outcome and time; page with `before` (an event id).',
      query: AuditQuery,
      responses: { 200: { description: 'Events', schema: AuditPage } },
      async handle({ query }) {
        return { status: 200, body: await auditLog.page(query) };
      },
    }),
  ];
}
