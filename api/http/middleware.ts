/** Request-level middleware: request ids, JSON depth limit, timeouts, CORS, latency metrics. */
import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { ApiMetrics } from '../../platform/observability/index.ts';
import { AppError } from '../domain/errors.ts';

export const requestId: RequestHandler = (req, res, next) => {
  const incoming = req.get('x-request-id');
  const id = incoming && /^[\w.:-]{8,128}$/.test(incoming) ? incoming : randomUUID();
  res.locals.requestId = id;
  res.set('X-Request-Id', id);
  next();
};

/**
 * Bodies are UTF-8 (RFC 8259 §8.1 for JSON; the form bodies of the token endpoint too): a Content-Type
 * naming another charset is 415 before any parser runs. The parsers would otherwise decode UTF-16 or
 * UTF-7 into the same strings, which a proxy or firewall reading the bytes never saw (`+ADw-` is `<`).
 */
export const utf8Bodies: RequestHandler = (req, _res, next) => {
  const type = req.headers['content-type'];
  // Only a body has a charset to worry about: a GET that names one with nothing to decode is let through.
  const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  if (!type || !hasBody) return next();
  const charset = /;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/i.exec(type);
  const name = (charset?.[1] ?? charset?.[2])?.toLowerCase();
  if (name === undefined || name === 'utf-8' || name === 'utf8') return next();
  next(new AppError('UNSUPPORTED_MEDIA_TYPE', { detail: `Bodies are UTF-8; this one says charset=${name.slice(0, 40)}` }));
};

/** Fields that may appear once (RFC 9110 §5.3): Node keeps the first of two and drops the rest, where a proxy may read the last. */
const singletonHeaders = new Set(['authorization', 'content-type', 'host', 'idempotency-key', 'last-event-id']);

/** A singleton field sent twice is a 400 naming it, rather than the first copy winning. */
export const singleHeaders: RequestHandler = (req, _res, next) => {
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    if (!singletonHeaders.has(name)) continue;
    if (seen.has(name)) twice.add(name);
    seen.add(name);
  }
  if (!twice.size) return next();
  next(
    new AppError('VALIDATION_FAILED', {
      detail: 'A header that may appear once was sent more than once',
      errors: [...twice].map((name) => ({ path: `headers.${name}`, message: 'sent more than once' })),
    }),
  );
};

/**
 * Rejects parsed bodies nested deeper than `max` (a cheap guard against pathological JSON), and bodies
 * with a `__proto__` key anywhere: the parser keeps it as an own key, but validation drops it (setting it
 * on an object sets the prototype), so a field sent under that name would vanish without a word. One walk
 * over the parsed body checks both.
 */
export function jsonDepthLimit(max: number): RequestHandler {
  return (req, _res, next) => {
    const problem = req.body && typeof req.body === 'object' ? shapeProblem(req.body, max) : undefined;
    if (problem === 'depth') return next(new AppError('MALFORMED_BODY', { detail: `The JSON body is nested deeper than ${max} levels` }));
    if (problem === 'proto')
      return next(new AppError('MALFORMED_BODY', { detail: 'The body holds a "__proto__" key, which no field of this API has and parsing would not keep' }));
    next();
  };
}

function shapeProblem(value: object, max: number): 'depth' | 'proto' | undefined {
  const stack: [object, number][] = [[value, 1]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (d > max) return 'depth';
    if (Object.hasOwn(v, '__proto__')) return 'proto';
    for (const child of Object.values(v)) if (child && typeof child === 'object') stack.push([child, d + 1]);
  }
  return undefined;
}

/**
 * Answers 503 REQUEST_TIMEOUT (with Retry-After) if a (non-streaming) request is still unanswered after `ms`: the server is
 * overloaded or a dependency is slow, so the client should come back later. The handler is not stopped and may still finish
 * its work: the outcome is unknown to the client, which must not take the 503 for "nothing was done" (docs/errors.md).
 */
export function requestTimeout(ms: number): RequestHandler {
  return (req, res, next) => {
    if (req.path.endsWith('/events')) return next();
    const timer = setTimeout(() => {
      if (!res.headersSent) next(new AppError('REQUEST_TIMEOUT'));
    }, ms);
    res.on('finish', () => clearTimeout(timer));
    res.on('close', () => clearTimeout(timer));
    next();
  };
}

const exposedHeaders = 'X-Request-Id,Retry-After,RateLimit,RateLimit-Policy,ETag,Location,Idempotent-Replayed,WWW-Authenticate';

/**
 * The methods each path of a route table takes (HEAD wherever GET is, OPTIONS everywhere), or undefined
 * for a path it does not have. Paths use Express's `:name` segments; a parameter matches one segment.
 */
export function pathMethods(endpoints: { method: string; path: string }[]): (path: string) => string[] | undefined {
  const byPattern = new Map<string, { re: RegExp; methods: Set<string> }>();
  for (const e of endpoints) {
    let entry = byPattern.get(e.path);
    if (!entry) {
      const source = e.path
        .split('/')
        .map((seg) => (seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
        .join('/');
      entry = { re: new RegExp(`^${source}/?$`, 'i'), methods: new Set(['OPTIONS']) };
      byPattern.set(e.path, entry);
    }
    entry.methods.add(e.method.toUpperCase());
    if (e.method.toLowerCase() === 'get') entry.methods.add('HEAD');
  }
  const entries = [...byPattern.values()];
  return (path) => {
    const methods = new Set<string>();
    for (const e of entries) if (e.re.test(path)) for (const m of e.methods) methods.add(m);
    return methods.size ? [...methods].sort() : undefined;
  };
}

/**
 * CORS for an allow-list of origins; other origins get no CORS headers (the browser then blocks). A
 * preflight from an allowed origin is answered here, before the limiters and authentication (it carries
 * no credentials), but only for a path the API has, naming that path's methods; a preflight for any
 * other path goes on to the 404.
 */
export function cors(origins: string[], methodsOf: (path: string) => string[] | undefined): RequestHandler {
  const allowed = new Set(origins);
  return (req, res, next) => {
    const origin = req.get('origin');
    if (origin && allowed.has(origin)) {
      // Exposed so a browser client (the SDK) can read them: request ids for errors, retry timing, caching, idempotent replays.
      res.set({
        'Access-Control-Allow-Origin': origin,
        'Access-Control-Allow-Credentials': 'true',
        'Access-Control-Expose-Headers': exposedHeaders,
        Vary: 'Origin',
      });
      const methods = req.method === 'OPTIONS' ? methodsOf(req.path) : undefined;
      if (methods) {
        res.set({
          Allow: methods.join(', '),
          'Access-Control-Allow-Methods': methods.join(','),
          'Access-Control-Allow-Headers': 'Authorization,Content-Type,Idempotency-Key,Last-Event-ID,If-None-Match,X-Request-Id,Cache-Control',
          'Access-Control-Max-Age': '600',
        });
        return res.status(204).end();
      }
    }
    next();
  };
}

export function httpMetrics(metrics: ApiMetrics): RequestHandler {
  return (req, res, next) => {
    const end = metrics.httpDuration.startTimer({ method: req.method });
    let observed = false;
    // 'finish' when the answer was sent; 'close' alone when the client left first (an event stream's usual end).
    const observe = () => {
      if (observed) return;
      observed = true;
      end({ route: routeLabel(req), status: String(res.statusCode) });
    };
    res.on('finish', observe);
    res.on('close', observe);
    next();
  };
}

/** The matched route pattern, never the raw path (ids would explode the label set); one pattern where a router matched several. */
function routeLabel(req: Parameters<RequestHandler>[0]): string {
  const path = req.route?.path as unknown;
  const pattern = Array.isArray(path) ? path[0] : path;
  return typeof pattern === 'string' ? `${req.baseUrl}${pattern}` : pattern instanceof RegExp ? `${req.baseUrl}${String(pattern)}` : 'unmatched';
}
