/**
 * Composition root of an API process: `npm run api`.
 * Parses config once, builds connections and domain services, wires routes,
 * SSE and Socket.IO, and shuts down cleanly on SIGTERM: stop accepting, let
 * in-flight requests finish, close streams, then connections.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../platform/config.ts';
import { connectDb } from '../platform/db.ts';
import { createJobStore } from '../platform/job-store.ts';
import { keys } from '../platform/keys.ts';
import { createLogger } from '../platform/log.ts';
import { createApiMetrics } from '../platform/metrics.ts';
import { OllamaClient } from '../platform/ollama/client.ts';
import { createQueues, closeQueues } from '../platform/queues.ts';
import { connectRedis } from '../platform/redis.ts';
import { createApp } from './app.ts';
import { createAudit } from './auth/audit.ts';
import { bearerAuthenticator } from './auth/authenticate.ts';
import { createAuthService } from './auth/service.ts';
import { tokenEndpointGuard } from './auth/token-endpoint.ts';
import type { JobDeps } from './domain/jobs.ts';
import { rateLimiters } from './http/rate-limit.ts';
import { deepProbe } from './domain/probe.ts';
import { buildOpenApi } from './openapi.ts';
import { StreamHub } from './realtime/hub.ts';
import { attachSocketServer } from './realtime/socket.ts';
import { sseHandler } from './realtime/sse.ts';
import { authRoutes } from './routes/auth.ts';
import { jobRoutes } from './routes/jobs.ts';
import { opsRoutes } from './routes/ops.ts';

export async function startApi(env: NodeJS.ProcessEnv = process.env) {
  const config = loadConfig(env);
  const log = createLogger('api', config.logLevel);
  const redis = connectRedis(config.redisUrl, { name: 'parley-api' });
  const hubReader = connectRedis(config.redisUrl, { blocking: true, name: 'parley-api-hub' });
  const pubClient = connectRedis(config.redisUrl, { name: 'parley-api-io-pub' });
  const subClient = connectRedis(config.redisUrl, { blocking: true, name: 'parley-api-io-sub' });
  const db = connectDb(config.databaseUrl, { pool: 20 });
  const store = createJobStore(db);
  const k = keys(config.keyPrefix);
  const metrics = createApiMetrics();
  const queues = createQueues(redis, config.keyPrefix);
  const ollama = new OllamaClient({ host: config.ollama.host, connectTimeoutMs: config.ollama.connectTimeoutMs, firstTokenTimeoutMs: config.ollama.firstTokenTimeoutMs, idleTimeoutMs: config.ollama.idleTimeoutMs });
  const audit = createAudit(db, log);
  const auth = createAuthService({ db, redis, config, audit, keyPrefix: config.keyPrefix, onFailure: (kind, reason) => metrics.authFailures.inc({ kind, reason }) });
  const authenticate = bearerAuthenticator(auth, (reason) => metrics.authFailures.inc({ kind: 'bearer', reason }));
  const hub = new StreamHub(hubReader, redis, log);
  await hub.start();

  const jobDeps: JobDeps = { config, store, queues, redis, keys: k, audit, onSubmitted: (kind, priority) => metrics.submitted.inc({ kind, priority }) };
  const routes = [...opsRoutes({ redis, db, ollama, queues, metrics, prefix: config.keyPrefix, openapi: () => openapi, deepProbe: () => deepProbe({ store, queues }) }), ...authRoutes({ auth, db }), ...jobRoutes(jobDeps)];
  const sse = { path: '/v1/jobs/:id/events', method: 'get' as const, summary: 'Live events of a job as Server-Sent Events; resumable with Last-Event-ID.', tags: ['jobs'], access: 'jobs:read', responses: { 200: { description: 'text/event-stream of tokens, progress, reset and finished', contentType: 'text/event-stream' } } };
  const openapi = buildOpenApi(routes, [sse]);
  const app = createApp({
    config, log, metrics, queues, routes, authenticate, openapi: () => openapi,
    before: [{ path: '/v1/auth/token', handler: tokenEndpointGuard }, ...rateLimiters({ redis, prefix: config.keyPrefix, limits: config.rateLimits, authenticate, log, onLimited: (limiter) => metrics.rateLimited.inc({ limiter }) })],
    streams: [{ path: sse.path, handler: sseHandler({ store, redis, keys: k, hub, onOpen: () => metrics.sockets.inc({ transport: 'sse' }), onClose: () => metrics.sockets.dec({ transport: 'sse' }) }, authenticate) }],
  });

  const bootstrap = await auth.bootstrapAdmin();
  if (bootstrap === 'created') log.info({ user: config.auth.bootstrapAdmin?.username }, 'bootstrap admin created');

  const server: HttpServer = createServer(app);
  server.requestTimeout = config.http.requestTimeoutMs * 2;
  const io = attachSocketServer(server, {
    store, redis, keys: k, hub, log, prefix: config.keyPrefix, pubClient, subClient, corsOrigins: config.http.corsOrigins,
    auth: { verify: (t) => auth.authenticateToken(t), stillValid: (a) => auth.stillValid(a) },
    onConnections: (n) => metrics.sockets.set({ transport: 'socket.io' }, n),
  });
  await new Promise<void>((resolve) => server.listen(config.port, '0.0.0.0', resolve));
  const port = (server.address() as AddressInfo).port;
  log.info({ port }, 'api listening');

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      log.info('stopping api');
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      await new Promise<void>((r) => io.close(() => r()));
      await hub.close();
      await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
      server.closeAllConnections();
      await closeQueues(queues);
      await Promise.all([redis.quit(), hubReader.quit(), pubClient.quit(), subClient.quit()]).catch(() => {});
      await db.destroy();
      log.info('api stopped');
    })());
  return { app, server, io, port, stop, config, auth, db, redis, store, queues, keys: k, hub, routes, audit };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const api = await startApi();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => {
      api.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}
