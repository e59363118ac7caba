/**
 * Turns route declarations into Express handlers: authenticate, authorise,
 * validate (400 with field paths), call the route, send. Auth failures end
 * the request before the route's handler runs.
 */
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { can, type Actor, type Permission } from '../auth/permissions.ts';
import { AppError } from '../domain/errors.ts';
import type { Method, Route } from './route.ts';
import { issuesToErrors, unstorableText } from '../domain/field-errors.ts';

export type Authenticate = (req: Request, res: Response) => Promise<Actor | undefined>;

const partNames: Record<string, string> = { params: 'path parameters', query: 'query string', body: 'body' };

function parsePart<S extends z.ZodType>(declared: S | undefined, value: unknown, part: string): z.infer<S> {
  if (!declared) return undefined as z.infer<S>;
  // A misspelt query parameter is an error, not silently ignored (`?kinds=` would otherwise list everything).
  const schema = part === 'query' && declared instanceof z.ZodObject ? (declared.strict() as unknown as S) : declared;
  const r = schema.safeParse(value);
  if (!r.success)
    throw new AppError('VALIDATION_FAILED', {
      detail: `The ${partNames[part] ?? part} ${part === 'params' ? 'are' : 'is'} not valid`,
      errors: issuesToErrors(r.error, part === 'body' ? undefined : part, schema, value),
    });
  const unstorable = unstorableText(r.data, part === 'body' ? [] : [part]);
  if (unstorable.length)
    throw new AppError('VALIDATION_FAILED', {
      detail: `The ${partNames[part] ?? part} ${part === 'params' ? 'hold' : 'holds'} text that cannot be stored`,
      errors: unstorable,
    });
  return r.data;
}

/** The actor, whatever its permissions; no credential is 401. */
export function authenticated(actor: Actor | undefined): Actor {
  if (!actor) throw new AppError('UNAUTHENTICATED', { detail: 'Send "Authorization: Bearer <access token>" (from POST /v1/auth/token) or an API key' });
  return actor;
}

/**
 * The actor, if it may use a resource needing `permission`: no credential is 401; one without the
 * permission is 403 with RFC 6750 §3.1's insufficient_scope challenge naming it. Routes and event streams.
 */
export function authorize(actor: Actor | undefined, permission: Permission): Actor {
  const a = authenticated(actor);
  if (!can(a, permission))
    throw new AppError('FORBIDDEN', {
      detail: `This needs the ${permission} permission`,
      headers: { 'WWW-Authenticate': `Bearer realm="parley", error="insufficient_scope", scope="${permission}"` },
    });
  return a;
}

function hasBody(req: Request): boolean {
  return Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
}

/**
 * Why a binary route (`bodyType: 'binary'`) refuses this request's body, if it does: a media type it
 * does not list, or any Content-Encoding but identity. The route reads the bytes as they came (a
 * .tar.gz is compressed already), so a coding would go undecoded; the JSON routes' parser decodes
 * gzip, deflate and br and answers 415 to others, and this answers 415 to all.
 */
function binaryBodyRefusal(req: Request, r: Route): AppError | undefined {
  const types = r.binaryTypes ?? ['application/octet-stream'];
  if (!req.is(types)) return new AppError('UNSUPPORTED_MEDIA_TYPE', { detail: `Send the body as ${types.join(' or ')}` });
  const coding = (req.headers['content-encoding'] ?? '').trim().toLowerCase();
  if (coding !== '' && coding !== 'identity')
    return new AppError('UNSUPPORTED_MEDIA_TYPE', {
      detail: `Send the body as it is, with no Content-Encoding (a .tar.gz is compressed already); this one has Content-Encoding: ${coding.slice(0, 40)}`,
    });
  return undefined;
}

/**
 * The binary routes' refusals of a body, before the body parsers (register it ahead of them): sent as
 * application/json, an archive was read by the JSON parser and refused as a 400 about its bytes. A
 * request without a body is left to the route, which answers it after authentication like any other.
 */
export function binaryBodies(routes: Route[]): Router {
  const router = Router();
  for (const r of routes.filter((x) => x.bodyType === 'binary')) {
    router[r.method](r.path, (req: Request, _res: Response, next: (err?: unknown) => void) => next(hasBody(req) ? binaryBodyRefusal(req, r) : undefined));
  }
  return router;
}

/**
 * `endpoints`: the streams mounted elsewhere (SSE), so their paths answer 405 and OPTIONS too. The
 * 405 and OPTIONS handlers sit in this router, after the routes: a router that ends an OPTIONS request
 * unanswered would answer it itself, with an Allow of whatever routes its paths happened to match.
 */
export function mountRoutes(routes: Route[], authenticate: Authenticate, endpoints: { method: Method; path: string }[] = []): Router {
  const router = Router();
  // A path that is a route of its own (/v1/models/pull) is never a parameter of another (/v1/models/:name):
  // other methods on it are 405 (methodNotAllowed), not a lookup of a model called "pull".
  const fixed = new Set(routes.filter((r) => !r.path.includes(':')).map((r) => r.path));
  for (const r of routes) {
    router[r.method](r.path, async (req: Request, res: Response, next: (route?: 'route') => void) => {
      if (r.path.includes(':') && fixed.has(req.path)) return next('route');
      const clientCredentials = r.clientAuth && /^basic(?:\s|$)/i.test(req.headers.authorization ?? '');
      const actor = r.access === 'public' && (!req.headers.authorization || clientCredentials) ? undefined : await authenticate(req, res);
      // Who asked, for the denial audit (api/auth/denials.ts) when the answer is 403.
      res.locals.actor = actor;
      if (r.access === 'authenticated') authenticated(actor);
      else if (r.access !== 'public') authorize(actor, r.access);
      if (r.bodyType === 'binary') {
        const refused = binaryBodyRefusal(req, r);
        if (refused) throw refused;
      } else if (r.body && req.method !== 'GET') {
        const type = r.bodyType ?? 'json';
        if (hasBody(req) && !req.is(type === 'json' ? 'application/json' : 'application/x-www-form-urlencoded')) {
          throw new AppError('UNSUPPORTED_MEDIA_TYPE', { detail: `Send ${type === 'json' ? 'application/json' : 'application/x-www-form-urlencoded'}` });
        }
      }
      // Declared request headers are validated like the rest of the request: a malformed one is a 400 naming it.
      for (const [name, doc] of Object.entries(r.requestHeaders ?? {})) {
        const value = req.get(name);
        if (value === undefined || !doc.schema) continue;
        const ok = doc.schema.safeParse(value);
        if (!ok.success)
          throw new AppError('VALIDATION_FAILED', {
            detail: `The ${name} header is not valid`,
            errors: issuesToErrors(ok.error, `headers.${name.toLowerCase()}`),
          });
      }
      const result = await r.handle({
        params: parsePart(r.params, req.params, 'params'),
        query: parsePart(r.query, req.query, 'query'),
        body: parsePart(r.body, req.body ?? {}, 'body'),
        actor,
        requestId: res.locals.requestId as string,
        ip: req.ip ?? req.socket.remoteAddress ?? '',
        userAgent: req.headers['user-agent'],
        headers: {
          idempotencyKey: req.get('idempotency-key') ?? undefined,
          ifNoneMatch: req.get('if-none-match') ?? undefined,
          cacheControl: req.get('cache-control') ?? undefined,
          authorization: req.get('authorization') ?? undefined,
          contentType: req.get('content-type') ?? undefined,
        },
        stream: req,
      });
      if (result.headers) res.set(result.headers);
      res.status(result.status);
      if (result.body === undefined) res.end();
      else if (result.contentType) res.type(result.contentType).send(typeof result.body === 'string' ? result.body : JSON.stringify(result.body));
      else res.json(result.body);
    });
  }
  router.use(methodNotAllowed([...routes, ...endpoints]));
  return router;
}

/**
 * The methods each known path takes, for what the route table does not: an undeclared method on a
 * known path (TRACE and QUERY included) is 405 METHOD_NOT_ALLOWED with `Allow`, not 404; OPTIONS is
 * 204 with `Allow` (a CORS preflight from an allowed origin is answered before, by cors()). HEAD is
 * allowed wherever GET is (Express answers it). Register after the routes and streams it describes,
 * before the 404.
 */
export function methodNotAllowed(endpoints: { method: Method; path: string }[]): Router {
  const router = Router();
  const byPath = new Map<string, Set<string>>();
  for (const e of endpoints) {
    const set = byPath.get(e.path) ?? new Set<string>();
    set.add(e.method.toUpperCase());
    if (e.method === 'get') set.add('HEAD');
    byPath.set(e.path, set);
  }
  // Fixed segments before parameters, as the routes are ordered: /v1/models/pull before /v1/models/:name.
  const specificity = (path: string) =>
    path
      .split('/')
      .map((seg) => (seg.startsWith(':') ? '1' : '0'))
      .join('');
  for (const [path, methods] of [...byPath].sort(([a], [b]) => specificity(a).localeCompare(specificity(b)))) {
    const allow = [...methods, 'OPTIONS'].sort().join(', ');
    router.all(path, (req, res) => {
      res.set('Allow', allow);
      if (req.method === 'OPTIONS') return void res.status(204).end();
      throw new AppError('METHOD_NOT_ALLOWED', { detail: `${req.method} is not allowed here; this path takes ${allow}`, headers: { Allow: allow } });
    });
  }
  return router;
}
