/**
 * Composition root of an API process: `npm run api`.
 * Parses config once, builds connections and domain services, wires routes,
 * SSE and Socket.IO, and shuts down cleanly on SIGTERM: stop accepting, let
 * in-flight requests finish, close streams, then connections.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBudgets, settleFinishedJobs } from '../platform/usage/index.ts';
import { loadConfig } from '../platform/config.ts';
import { connectDb } from '../platform/connections/index.ts';
import { createJobStore } from '../platform/jobs/index.ts';
import { createDiscussionStore } from '../platform/discussions/index.ts';
import { createTranscripts } from '../platform/discussions/index.ts';
import { keys } from '../platform/keys.ts';
import { createLogger } from '../platform/observability/index.ts';
import { createApiMetrics } from '../platform/observability/index.ts';
import { connectMongo } from '../platform/connections/index.ts';
import { createOllamaClient } from '../platform/ollama/index.ts';
import { observeOllamaStatus } from '../platform/ollama/index.ts';
import { createQueues, closeQueues } from '../platform/jobs/index.ts';
import type { RoomEvent } from '../shared/index.ts';
import { connectRedis } from '../platform/connections/index.ts';
import { createApp } from './app.ts';
import { createAudit } from './auth/audit.ts';
import { bearerAuthenticator } from './auth/authenticate.ts';
import { createAuthService } from './auth/service.ts';
import { tokenEndpointGuard } from './auth/token-endpoint.ts';
import { createAdmission } from './domain/admission.ts';
import { agentCaps } from './domain/agents.ts';
import type { DiscussionDeps } from './domain/discussions.ts';
import type { JobDeps } from './domain/jobs.ts';
import { installedModelNames, type ModelDeps } from './domain/models.ts';
import { rateLimiters } from './http/rate-limit.ts';
import { deepProbe } from './domain/probe.ts';
import { buildOpenApi } from './openapi.ts';
import { discussionRoomKind, isLastRoomEvent, watchDiscussion, type RoomWatchDeps } from './realtime/discussion-watch.ts';
import { StreamHub } from './realtime/hub.ts';
import { attachSocketServer } from './realtime/socket.ts';
import { eventStreamHandler, sseHandler, type StreamHooks } from './realtime/sse.ts';
import { authRoutes } from './routes/auth.ts';
import { agentRoutes, discussionEventsDoc, discussionRoutes } from './routes/discussions.ts';
import { jobRoutes } from './routes/jobs.ts';
import { modelStatusRoutes } from './routes/model-status.ts';
import { modelRoutes } from './routes/models.ts';
import { opsRoutes } from './routes/ops.ts';
import { usageRoutes } from './routes/usage.ts';
import { codeRoutes } from './routes/code.ts';
import { collectionRoutes } from './routes/collections.ts';
import { createCodeSearch, createCodeStore } from '../platform/code/index.ts';
import { Embedder, createCollectionStore, createIndexCatalog, openVectorStore, redisLock } from '../platform/vectors/index.ts';

export async function startApi(env: NodeJS.ProcessEnv = process.env) {
  const config = loadConfig(env);
  const log = createLogger('api', config.logLevel);
  const redis = connectRedis(config.redisUrl, { name: 'parley-api' });
  const hubSubscriber = connectRedis(config.redisUrl, { blocking: true, name: 'parley-api-hub' });
  const pubClient = connectRedis(config.redisUrl, { name: 'parley-api-io-pub' });
  const subClient = connectRedis(config.redisUrl, { blocking: true, name: 'parley-api-io-sub' });
  const db = connectDb(config.databaseUrl, { pool: 20 });
  const budgets = createBudgets({ db, redis, prefix: config.keyPrefix, checkEveryTokens: config.budgets.checkEveryTokens, log });
  // A job cancelled while waiting is made terminal here: its budget reservation is released by the same hook.
  const store = createJobStore(db, { keyPrefix: config.keyPrefix, onFinished: settleFinishedJobs(budgets, log) });
  const k = keys(config.keyPrefix);
  const metrics = createApiMetrics();
  const queues = createQueues(redis, config.keyPrefix);
  const ollama = createOllamaClient(config.ollama);
  // Model status: polled in the background; feeds /v1/models/status, /readyz, gauges and the operators' `ollama_status` event.
  const configuredModels = [config.ollama.chatModel, config.ollama.embedModel];
  ollama.status.onUpdate(() => observeOllamaStatus(metrics, ollama.status));
  void ollama.status.start();
  const modelReadiness = async () => ({
    ollamaHosts: ollama.status.hostStatus().map((h) => ({ host: h.host, up: h.up })),
    models: ollama.status.availability(configuredModels).map((m) => ({ model: m.model, installed: m.installed, loaded: m.loaded, loadedOn: m.hosts.filter((h) => h.loaded).map((h) => h.host) })),
  });
  const audit = createAudit(db, log);
  const auth = createAuthService({ db, redis, config, audit, keyPrefix: config.keyPrefix, onFailure: (kind, reason) => metrics.authFailures.inc({ kind, reason }) });
  const authenticate = bearerAuthenticator(auth, (reason) => metrics.authFailures.inc({ kind: 'bearer', reason }));
  const hub = new StreamHub(hubSubscriber, redis, log);
  await hub.start();

  const modelDeps: ModelDeps = {
    host: config.ollama.host, chatModel: config.ollama.chatModel, embedModel: config.ollama.embedModel, loadKeepAlive: config.modelOps.loadKeepAlive,
    db, redis, prefix: config.keyPrefix, store, queues, audit,
  };
  // Caps and budgets for llm.chat and embed.batch, checked at submit (api/domain/admission.ts).
  const admit = createAdmission({ config, db, budgets, installedModels: installedModelNames(modelDeps) });
  const jobDeps: JobDeps = { config, store, queues, redis, keys: k, audit, admit, release: (id) => budgets.release(id), onSubmitted: (kind, priority) => metrics.submitted.inc({ kind, priority }) };
  const mongo = connectMongo(config.mongoUrl, { appName: 'parley-api' });
  const discussionDeps: DiscussionDeps = {
    db, redis, keys: k, keyPrefix: config.keyPrefix, queues, log, jobs: store, streamTtlSeconds: config.streams.ttlSeconds, chatModel: config.ollama.chatModel,
    rooms: createDiscussionStore(db), transcripts: createTranscripts(mongo),
    checkAgent: agentCaps({ roleCaps: config.roleCaps, installedModels: installedModelNames(modelDeps) }),
  };
  // The vector store: searches and collection queries read it here; deletes write it (under the same lock as the workers).
  const vectors = await openVectorStore({
    uri: config.vectors.uri,
    lock: redisLock(redis, k.vectorTableLock),
    maintenance: { vectorIndexMinRows: config.vectors.vectorIndexMinRows, vectorIndex: config.vectors.vectorIndex, versionRetentionMs: config.vectors.versionRetentionMs },
  });
  const catalog = createIndexCatalog(db, config.keyPrefix);
  const embedder = new Embedder(ollama);
  const submitDeps = { db, queues, keyPrefix: config.keyPrefix };
  const codeDeps = { config, store: createCodeStore(db), catalog, vectors, search: createCodeSearch({ vectors, catalog, embedder }), jobs: store, submit: submitDeps };
  const collectionDeps = { config, collections: createCollectionStore(db), catalog, vectors, embedder, submit: submitDeps };
  const roomWatch: RoomWatchDeps = { rooms: discussionDeps.rooms, transcripts: discussionDeps.transcripts, redis, keys: k, hub };
  const routes = [...opsRoutes({ redis, db, ollama, queues, metrics, prefix: config.keyPrefix, openapi: () => openapi, deepProbe: () => deepProbe({ store, queues }), extraReadiness: modelReadiness }), ...authRoutes({ auth, db }), ...jobRoutes(jobDeps), ...modelStatusRoutes({ status: ollama.status, models: configuredModels }), ...agentRoutes(discussionDeps), ...discussionRoutes(discussionDeps), ...usageRoutes({ db, budgets, audit }), ...codeRoutes(codeDeps), ...collectionRoutes(collectionDeps),
    // Last: GET /v1/models/:name would otherwise answer for fixed paths such as /v1/models/status.
    ...modelRoutes(modelDeps)];
  const streamHooks: StreamHooks = { onOpen: () => metrics.sockets.inc({ transport: 'sse' }), onClose: () => metrics.sockets.dec({ transport: 'sse' }), stillValid: (a) => auth.stillValid(a) };
  const sse = { path: '/v1/jobs/:id/events', method: 'get' as const, summary: 'Live events of a job as Server-Sent Events; resumable with Last-Event-ID.', tags: ['jobs'], access: 'jobs:read', responses: { 200: { description: 'text/event-stream of tokens, progress, reset and finished', contentType: 'text/event-stream' } } };
  const openapi = buildOpenApi(routes, [sse, discussionEventsDoc]);
  const app = createApp({
    config, log, metrics, queues, routes, authenticate, openapi: () => openapi,
    before: [{ path: '/v1/auth/token', handler: tokenEndpointGuard }, ...rateLimiters({ redis, prefix: config.keyPrefix, limits: config.rateLimits, authenticate, log, onLimited: (limiter) => metrics.rateLimited.inc({ limiter }) })],
    streams: [{ path: sse.path, handler: sseHandler({ store, redis, keys: k, hub, ...streamHooks }, authenticate) },
      { path: discussionEventsDoc.path, handler: eventStreamHandler<RoomEvent>(streamHooks, authenticate, { permission: 'discussions:read', watch: (actor, id, afterSeq, fn) => watchDiscussion(roomWatch, actor, id, afterSeq, fn), isLast: isLastRoomEvent }) },
    ],
  });

  const bootstrap = await auth.bootstrapAdmin();
  if (bootstrap === 'created') log.info({ user: config.auth.bootstrapAdmin?.username }, 'bootstrap admin created');

  const server: HttpServer = createServer(app);
  server.requestTimeout = config.http.requestTimeoutMs * 2;
  const io = attachSocketServer(server, {
    store, redis, keys: k, hub, log, prefix: config.keyPrefix, pubClient, subClient, corsOrigins: config.http.corsOrigins,
    auth: { verify: (t) => auth.authenticateToken(t), stillValid: (a) => auth.stillValid(a) },
    onConnections: (n) => metrics.sockets.set({ transport: 'socket.io' }, n),
    rooms: { discussion: discussionRoomKind(roomWatch) },
  });
  // `ollama_status` { host, up, at } to operators and admins when a host goes down or comes back.
  // Local emit: every API node polls on its own, so each node tells its own sockets once.
  ollama.status.onTransition((t) => io.local.to('operators').emit('ollama_status', t));
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
      ollama.close();
      await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
      server.closeAllConnections();
      await closeQueues(queues);
      await Promise.all([redis.quit(), hubSubscriber.quit(), pubClient.quit(), subClient.quit()]).catch(() => {});
      vectors.close();
      await db.destroy();
      await mongo.close().catch(() => {});
      log.info('api stopped');
    })());
  return { app, server, io, port, stop, config, auth, db, redis, store, queues, keys: k, hub, routes, audit, ollama, discussions: discussionDeps, code: codeDeps, collections: collectionDeps, vectors };
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
