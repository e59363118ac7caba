/**
 * Turns route declarations into Express handlers: authenticate, authorise,
 * validate (400 with field paths), call the route, send. Auth failures end
 * the request before the route's handler runs.
 */
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { can, type Actor } from '../auth/permissions.ts';
import { AppError } from './app-error.ts';
import type { Route } from './route.ts';
import { issuesToErrors, unstorableText } from './validation.ts';

export type Authenticate = (req: Request, res: Response) => Promise<Actor | undefined>;


const partNames: Record<string, string> = { params: 'path parameters', query: 'query string', body: 'body' };

function parsePart<S extends z.ZodType>(declared: S | undefined, value: unknown, part: string): z.infer<S> {
  if (!declared) return undefined as z.infer<S>;
  // A misspelt query parameter is an error, not silently ignored (`?kinds=` would otherwise list everything).
  const schema = part === 'query' && declared instanceof z.ZodObject ? (declared.strict() as unknown as S) : declared;
  const r = schema.safeParse(value);
  if (!r.success) throw new AppError('VALIDATION_FAILED', { detail: `The ${partNames[part] ?? part} ${part === 'params' ? 'are' : 'is'} not valid`, errors: issuesToErrors(r.error, part === 'body' ? undefined : part, schema, value) });
  const unstorable = unstorableText(r.data, part === 'body' ? [] : [part]);
  if (unstorable.length) throw new AppError('VALIDATION_FAILED', { detail: `The ${partNames[part] ?? part} ${part === 'params' ? 'hold' : 'holds'} text that cannot be stored`, errors: unstorable });
  return r.data;
}

export function mountRoutes(routes: Route[], authenticate: Authenticate): Router {
  const router = Router();
  for (const r of routes) {
    router[r.method](r.path, async (req: Request, res: Response) => {
      const actor = r.access === 'public' && !req.headers.authorization ? undefined : await authenticate(req, res);
      // Who asked, for the denial audit (api/auth/denials.ts) when the answer is 403.
      res.locals.actor = actor;
      if (r.access !== 'public') {
        if (!actor) throw new AppError('UNAUTHENTICATED', { detail: 'Send "Authorization: Bearer <access token>" (from POST /v1/auth/token) or an API key' });
        if (!can(actor, r.access)) throw new AppError('FORBIDDEN', { detail: `This needs the ${r.access} permission` });
      }
      if (r.bodyType === 'binary') {
        const types = r.binaryTypes ?? ['application/octet-stream'];
        if (!req.is(types)) throw new AppError('UNSUPPORTED_MEDIA_TYPE', { detail: `Send the body as ${types.join(' or ')}` });
      } else if (r.body && req.method !== 'GET') {
        const type = r.bodyType ?? 'json';
        const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
        if (hasBody && !req.is(type === 'json' ? 'application/json' : 'application/x-www-form-urlencoded')) {
          throw new AppError('UNSUPPORTED_MEDIA_TYPE', { detail: `Send ${type === 'json' ? 'application/json' : 'application/x-www-form-urlencoded'}` });
        }
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
  return router;
}
