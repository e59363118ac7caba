/**
 * The Express application: middleware in order, then the declared routes,
 * then problem+json for everything that goes wrong.
 */
import { isUtf8 } from 'node:buffer';
import express, { type Express } from 'express';
import helmet from 'helmet';
import swaggerUi from 'swagger-ui-express';
import type { Config } from '../platform/config.ts';
import { portOf } from '../platform/connections/index.ts';
import type { Logger } from '../platform/observability/index.ts';
import type { ApiMetrics } from '../platform/observability/index.ts';
import type { Queues } from '../platform/jobs/index.ts';
import { accessLog } from './http/access-log.ts';
import { errorMiddleware, notFound } from './http/errors.ts';
import { bullBoardRouter, type BoardDeps } from './http/bull-board.ts';
import { cors, httpMetrics, jsonDepthLimit, pathMethods, requestId, requestTimeout, singleHeaders, utf8Bodies } from './http/middleware.ts';
import { binaryBodies, mountRoutes, type Authenticate } from './http/mount.ts';
import type { Route } from './http/route.ts';
import { webApp } from './http/web.ts';

export interface AppDeps {
  config: Config;
  log: Logger;
  metrics: ApiMetrics;
  queues: Queues;
  routes: Route[];
  authenticate: Authenticate;
  /** What the queue board (PARLEY_DASHBOARD) checks credentials with and reports to. */
  board: Omit<BoardDeps, 'queues'>;
  /** Raw handlers for streaming endpoints, mounted before the 404. */
  streams: { path: string; handler: express.RequestHandler }[];
  /** Middleware that runs before routes (e.g. rate limiters), keyed by path prefix. */
  before?: { path: string; handler: express.RequestHandler }[];
  /**
   * Middleware that runs before the body parsers, keyed by path prefix: what must hold even for a
   * body they refuse (the token endpoint's RFC 6749 error style and content type).
   */
  beforeBody?: { path: string; handler: express.RequestHandler }[];
  openapi: () => object;
  /** The built arena page (web/dist), served at `/`. */
  webDir?: string;
}

/**
 * helmet's headers, with HSTS and `upgrade-insecure-requests` only where they are true: over TLS
 * (`req.secure`, which honours a trusted proxy's X-Forwarded-Proto) in "auto" mode. Sent over plain
 * HTTP they would make a browser that reached us by a LAN address fetch every asset over HTTPS.
 */
function securityHeaders(mode: 'auto' | 'always' | 'never', directives: Record<string, string[]> = {}): express.RequestHandler {
  const secure = helmet({ contentSecurityPolicy: { directives } });
  const plain = helmet({ strictTransportSecurity: false, contentSecurityPolicy: { directives: { ...directives, 'upgrade-insecure-requests': null } } });
  return (req, res, next) => (mode === 'always' || (mode === 'auto' && req.secure) ? secure : plain)(req, res, next);
}

export function createApp(deps: AppDeps): Express {
  const { config } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.http.trustProxy);
  app.set('query parser', 'simple');
  app.use(requestId);
  app.use(accessLog(deps.log));
  app.use(httpMetrics(deps.metrics));
  // Swagger UI needs inline scripts and styles on /docs only; everything else gets helmet's strict defaults.
  app.use(
    '/docs',
    securityHeaders(config.http.hsts, {
      'script-src': ["'self'", "'unsafe-inline'"],
      'style-src': ["'self'", "'unsafe-inline'"],
      'img-src': ["'self'", 'data:'],
    }),
  );
  app.use(/^\/(?!docs).*/, securityHeaders(config.http.hsts));
  app.use(cors(config.http.corsOrigins, pathMethods([...deps.routes, ...deps.streams.map((s) => ({ method: 'get', path: s.path }))])));
  app.use(requestTimeout(config.http.requestTimeoutMs));
  for (const b of deps.beforeBody ?? []) app.use(b.path, b.handler);
  // JSON is UTF-8 (RFC 8259 §8.1): another charset is 415, bytes that are not UTF-8 are refused, not decoded into replacement characters.
  app.use(singleHeaders);
  app.use(utf8Bodies);
  // Before the parsers: a binary route's body in a type or coding it does not take is 415, never parsed as JSON or a form.
  app.use(binaryBodies(deps.routes));
  app.use(express.json({ limit: config.http.bodyLimit, strict: true, type: ['application/json', 'application/*+json'], verify: refuseInvalidUtf8 }));
  app.use(express.urlencoded({ limit: '16kb', extended: false, parameterLimit: 20 }));
  app.use(jsonDepthLimit(config.http.jsonMaxDepth));
  for (const b of deps.before ?? []) app.use(b.path, b.handler);
  if (config.http.dashboard) app.use('/admin/queues', bullBoardRouter({ queues: deps.queues, ...deps.board }));
  // The page at /docs/ (and index.html), its assets beside it; any other path under /docs is a 404, not the page again.
  const docsPage = swaggerUi.setup(undefined, { swaggerOptions: { url: '/openapi.json' } });
  app.use('/docs', swaggerUi.serve, (req: express.Request, res: express.Response, next: express.NextFunction) =>
    req.path === '/' || req.path === '/index.html' ? docsPage(req, res, next) : next(),
  );
  for (const s of deps.streams) app.get(s.path, s.handler);
  app.use(
    mountRoutes(
      deps.routes,
      deps.authenticate,
      deps.streams.map((s) => ({ method: 'get' as const, path: s.path })),
    ),
  );
  if (deps.webDir) app.use(webApp(deps.webDir));
  app.use(notFound);
  app.use(
    errorMiddleware(deps.log, { redis: portOf(config.redisUrl, 6379), postgres: portOf(config.databaseUrl, 5432), mongodb: portOf(config.mongoUrl, 27017) }),
  );
  return app;
}

function refuseInvalidUtf8(_req: unknown, _res: unknown, buf: Buffer): void {
  if (!isUtf8(buf)) throw Object.assign(new Error('The body is not valid UTF-8'), { status: 400, type: 'entity.encoding.invalid' });
}
