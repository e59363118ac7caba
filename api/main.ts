/**
 * Composition root of an API process: `npm run api`.
 * Parses config once, builds connections and domain services, wires routes,
 * SSE and Socket.IO, and shuts down cleanly on SIGTERM: stop accepting, let
 * in-flight requests finish, close streams, then connections.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { createBudgets } from '../platform/usage/index.ts';
import { exitOnStartFailure, listen } from '../platform/host.ts';
import { loadConfig } from '../platform/config.ts';
import { connectDb, startSingletonLoop } from '../platform/connections/index.ts';
import { createJobLifecycle, streamSettings } from '../platform/jobs/index.ts';
import { createDiscussionStore } from '../platform/discussions/index.ts';
import { createTranscripts } from '../platform/discussions/index.ts';
import { keys } from '../platform/keys.ts';
import { createLogger } from '../platform/observability/index.ts';
import { createApiMetrics, primeApiCounters } from '../platform/observability/index.ts';
import { connectMongo } from '../platform/connections/index.ts';
import { createOllamaClient } from '../platform/ollama/index.ts';
import { observeOllamaStatus } from '../platform/ollama/index.ts';
import { z } from 'zod';
import { EventStreamQuery, jobEvents, LastEventIdHeader, sseFrame, type RoomEvent } from '../shared/index.ts';
import { connectRedis, whenReady } from '../platform/connections/index.ts';
import { createApp } from './app.ts';
import { createAuditLog, purgeAuthRecords } from '../platform/auth/index.ts';
import { createAudit } from './auth/audit.ts';
import { bearerAuthenticator } from './auth/authenticate.ts';
import { createBoardSessions } from './auth/board-sessions.ts';
import { auditedSurfaces, createDenialAudit, denialRecorder } from './auth/denials.ts';
import { createAuth, type RevokedCredential } from './auth/index.ts';
import { tokenEndpointGuard } from './auth/token-endpoint.ts';
import { createAdmission } from './domain/admission.ts';
import { agentCaps } from './domain/agents.ts';
import type { DiscussionDeps } from './domain/discussions.ts';
import { retryJob, type JobDeps, type JobReaders } from './domain/jobs.ts';
import { mayReadIndexJob } from './domain/code.ts';
import type { ModelDeps } from './domain/models.ts';
import { limiterNames, rateLimiters } from './http/rate-limit.ts';
import { AppError } from './domain/errors.ts';
import { endWithProblem } from './http/errors.ts';
import { eventStreamRefusals } from './http/route.ts';
import { deepProbe } from './domain/probe.ts';
import { scrapeTokenEndpoint } from './http/scrape-token.ts';
import { answerUpgradesAsHttp, byteSize } from './http/upgrade.ts';
import type { MetricsDeps } from './domain/metrics.ts';
import { buildOpenApi } from './openapi.ts';
import { discussionRoomKind, isLastRoomEvent, watchDiscussion, type RoomWatchDeps } from './realtime/discussion-watch.ts';
import { StreamHub } from '../platform/streams/index.ts';
import { attachSocketServer, endCredential } from './realtime/socket.ts';
import { connectionRegistry } from './realtime/connections.ts';
import { clientIpOf } from './http/client-ip.ts';
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
import { knowledgeRoutes } from './routes/knowledge.ts';
import { KnowledgeStore, createKnowledgeRecords, feedMessage } from '../platform/knowledge/index.ts';
import { archiveStaging, createCodeSearch, createCodeStore, sweepArchiveStaging } from '../platform/code/index.ts';
import { Embedder, createCollectionStore, createIndexCatalog, openVectorStore, redisLock } from '../platform/vectors/index.ts';

export async function startApi(env: NodeJS.ProcessEnv = process.env) {
  const config = loadConfig(env);
  const log = createLogger('api', config.logLevels.api);
  const redis = connectRedis(config.redisUrl, { name: 'parley-api', commandTimeoutMs: config.http.redisTimeoutMs });
  const hubSubscriber = connectRedis(config.redisUrl, { blocking: true, name: 'parley-api-hub' });
  const pubClient = connectRedis(config.redisUrl, { name: 'parley-api-io-pub' });
  const subClient = connectRedis(config.redisUrl, { blocking: true, name: 'parley-api-io-sub' });
  await Promise.all([hubSubscriber, pubClient, subClient].map(whenReady));
  const db = connectDb(config.databaseUrl, {
    pool: 20,
    queryTimeoutMs: config.http.dbQueryTimeoutMs,
    connectTimeoutMs: config.http.dbConnectTimeoutMs,
    acquireTimeoutMs: config.http.dbConnectTimeoutMs,
  });
  const budgets = createBudgets({ db, redis, prefix: config.keyPrefix, checkEveryTokens: config.budgets.checkEveryTokens, log });
  const k = keys(config.keyPrefix);
  const metrics = createApiMetrics();
  primeApiCounters(metrics, limiterNames);
  const hub = new StreamHub(hubSubscriber, redis, log);
  // Chaos testing: at a failpoint named in PARLEY_FAILPOINTS (test only) this process kills itself.
  const failpoint = (name: string): void => {
    if (!config.failpoints.has(name)) return;
    log.fatal({ failpoint: name }, 'failpoint reached: killing this process');
    process.kill(process.pid, 'SIGKILL');
  };
  // The one job lifecycle of this process. A job cancelled while waiting is made terminal here, which settles (releases) its budget.
  const jobs = createJobLifecycle({
    db,
    redis,
    keys: k,
    keyPrefix: config.keyPrefix,
    streams: streamSettings(config.streams),
    budgets,
    hub,
    log,
    failpoint,
  });
  const ollama = createOllamaClient(config.ollama);
  // Model status: polled in the background; feeds /v1/models/status, /readyz, gauges and the operators' `ollama_status` event.
  const configuredModels = [config.ollama.chatModel, config.ollama.embedModel];
  ollama.status.onUpdate(() => observeOllamaStatus(metrics, ollama.status));
  void ollama.status.start();
  const modelReadiness = async () => ({
    ollamaHosts: ollama.status.hostStatus().map((h) => ({ host: h.host, up: h.up })),
    models: ollama.status
      .availability(configuredModels)
      .map((m) => ({ model: m.model, installed: m.installed, loaded: m.loaded, loadedOn: m.hosts.filter((h) => h.loaded).map((h) => h.host) })),
  });
  const audit = createAudit(db, log);
  // Set once Socket.IO exists: a revocation ends the credential's sockets in every API process (Redis adapter).
  let onRevoked: (t: RevokedCredential) => void = () => {};
  const auth = createAuth({
    db,
    redis,
    config,
    audit,
    keyPrefix: config.keyPrefix,
    onFailure: (kind, reason) => metrics.authFailures.inc({ kind, reason }),
    onRevoked: (t) => onRevoked(t),
  });
  const authenticate = bearerAuthenticator(auth.tokens, (reason) => metrics.authFailures.inc({ kind: 'bearer', reason }));
  // 401/403/429 on the auth and admin surfaces: counted each, audited aggregated.
  const denials = createDenialAudit({
    audit,
    ...config.auth.denials,
    onDenial: (d) => metrics.authDenials.inc({ status: String(d.status), family: d.family }),
  });
  await hub.start();

  const modelDeps: ModelDeps = {
    ollama,
    chatModel: config.ollama.chatModel,
    embedModel: config.ollama.embedModel,
    loadKeepAlive: config.modelOps.loadKeepAlive,
    roleCaps: config.roleCaps,
    pullRegistries: config.modelOps.pullRegistries,
    pullInsecureRegistries: config.modelOps.pullInsecureRegistries,
    redis,
    prefix: config.keyPrefix,
    jobs,
    audit,
  };
  // Caps and budgets for llm.chat and embed.batch, checked at submit (api/domain/admission.ts); installed models from the status poller.
  const admit = createAdmission({ config, budgets, models: ollama.status });
  const codeStore = createCodeStore(db);
  // A code.index job is readable by its repository's readers too (the repository view links it to them).
  const jobReaders: JobReaders = (actor, row) => mayReadIndexJob({ store: codeStore }, actor, row);
  const jobDeps: JobDeps = {
    jobs,
    audit,
    readers: jobReaders,
    admit,
    release: (id) => budgets.release(id),
    onSubmitted: (kind, priority) => metrics.submitted.inc({ kind, priority }),
  };
  const mongo = connectMongo(config.mongoUrl, { appName: 'parley-api' });
  const knowledgeRecords = createKnowledgeRecords(db);
  const discussionDeps: DiscussionDeps = {
    db,
    redis,
    keys: k,
    keyPrefix: config.keyPrefix,
    log,
    jobs,
    streamTtlSeconds: config.streams.ttlSeconds,
    chatModel: config.ollama.chatModel,
    rooms: createDiscussionStore(db),
    transcripts: createTranscripts(mongo),
    checkAgent: agentCaps({ roleCaps: config.roleCaps, models: ollama.status }),
    maxAgentsPerUser: config.rooms.maxAgentsPerUser,
    maxOpenRoomsPerUser: config.rooms.maxOpenPerUser,
    maxMessagesPerRoom: config.rooms.maxMessages,
    roomStreamMaxLen: config.rooms.streamMaxLen,
    failpoint,
    // Human messages become room knowledge as committed turns do (the workers feed those).
    feedMessage: async (room, msg) => {
      await feedMessage({ records: knowledgeRecords, jobs }, room, msg).catch((err: unknown) =>
        log.warn({ err, room: room.id }, 'could not feed the message to knowledge'),
      );
    },
  };
  // The vector store: searches and collection queries read it here; deletes write it (under the same lock as the workers).
  const vectors = await openVectorStore({ ...config.vectors, lock: redisLock(redis, k.vectorTableLock) });
  const catalog = createIndexCatalog(db, config.keyPrefix);
  const embedder = new Embedder(ollama);
  const submitDeps = { jobs };
  const codeDeps = { config, store: codeStore, catalog, vectors, search: createCodeSearch({ vectors, catalog, embedder }), jobs, submit: submitDeps };
  // What an upload left when its process died (uploads are capped far below an hour's transfer).
  void sweepArchiveStaging(archiveStaging(config.code.dir), 3_600_000).then(
    (n) => n && log.info({ removed: n }, 'removed stale archive staging folders'),
    (err: unknown) => log.warn({ err }, 'could not sweep the archive staging folder'),
  );
  const collectionDeps = { config, collections: createCollectionStore(db), catalog, vectors, embedder, submit: submitDeps, jobs };
  const knowledgeDeps = {
    records: knowledgeRecords,
    knowledge: new KnowledgeStore({ vectors, embedder, catalog, model: config.ollama.embedModel }),
    submit: submitDeps,
    llmPass: { budgets, maxTokens: config.knowledge.llmMaxTokens },
  };
  const roomWatch: RoomWatchDeps = { rooms: discussionDeps.rooms, transcripts: discussionDeps.transcripts, redis, keys: k, hub };
  const scrape: MetricsDeps = { metrics, jobs, rooms: discussionDeps.rooms, redis, watchedStreams: () => hub.watchedStreams };
  const routes = [
    ...opsRoutes({
      redis,
      db,
      ollama,
      scrape,
      openapi: () => openapi,
      deepProbe: () => deepProbe({ jobs, redis, slotKey: k.readyzDeepSlot, intervalMs: config.readyzDeepIntervalMs }),
      extraReadiness: modelReadiness,
    }),
    ...authRoutes({ auth, auditLog: createAuditLog(db), onIssued: (grant) => metrics.tokensIssued.inc({ grant }) }),
    ...jobRoutes(jobDeps),
    ...modelStatusRoutes({ status: ollama.status, models: configuredModels }),
    ...agentRoutes(discussionDeps),
    ...discussionRoutes(discussionDeps),
    ...usageRoutes({ db, budgets, audit }),
    ...codeRoutes(codeDeps),
    ...collectionRoutes(collectionDeps),
    ...knowledgeRoutes(knowledgeDeps),
    // Last: GET /v1/models/:name would otherwise answer for fixed paths such as /v1/models/status.
    ...modelRoutes(modelDeps),
  ];
  // Live connections per user (SSE and Socket.IO together), over every API process.
  const connections = connectionRegistry(redis, k.userConnections, { maxPerUser: config.realtime.maxConnectionsPerUser });
  const streamHooks: StreamHooks = {
    onOpen: () => metrics.sockets.inc({ transport: 'sse' }),
    onClose: () => metrics.sockets.dec({ transport: 'sse' }),
    stillValid: (a) => auth.tokens.stillValid(a),
    connections,
    slowReaderMaxBytes: config.realtime.slowReaderMaxBytes,
  };
  const sse = {
    path: '/v1/jobs/:id/events',
    method: 'get' as const,
    operationId: 'streamJobEvents',
    summary: 'Live events of a job as Server-Sent Events; resumable with Last-Event-ID.',
    tags: ['jobs'],
    access: 'jobs:read',
    params: z.object({ id: z.uuid().toLowerCase() }),
    query: EventStreamQuery,
    requestHeaders: {
      'Last-Event-ID': {
        description: 'Resume after this seq: exactly the events after it. A seq beyond the last of a running job is read as that last seq.',
        schema: LastEventIdHeader,
      },
    },
    responses: {
      200: {
        description: 'text/event-stream of tokens, progress, reset and finished',
        contentType: 'text/event-stream',
        schema: sseFrame(Object.keys(jobEvents)),
      },
      204: { description: "Resumed at or after the job's `finished`: nothing more will ever come (ends a browser EventSource's reconnecting)" },
      ...eventStreamRefusals,
    },
  };
  const openapi = buildOpenApi(routes, [sse, discussionEventsDoc]);
  const app = createApp({
    config,
    log,
    metrics,
    queues: jobs.queues,
    routes,
    authenticate,
    openapi: () => openapi,
    // The arena page, built by `npm run web:build` (npm start runs it).
    webDir: join(dirname(fileURLToPath(import.meta.url)), '..', 'web', 'dist'),
    board: {
      tokens: auth.tokens,
      audit,
      alwaysSecure: config.http.hsts === 'always',
      onAction: (method, outcome) => metrics.boardActions.inc({ method, outcome }),
      retry: (actor, jobId, meta) => retryJob(jobDeps, actor, jobId, meta),
      sessions: createBoardSessions({ redis, keyPrefix: config.keyPrefix, ttlSeconds: config.http.boardSessionTtlSeconds }),
    },
    // The token endpoint's rules before the body parsers: a body they refuse is an RFC 6749 error too.
    beforeBody: [{ path: '/v1/auth/token', handler: tokenEndpointGuard }],
    // The scrape token first: it answers /metrics before any limiter or authenticator sees the request.
    before: [
      { path: '/metrics', handler: scrapeTokenEndpoint(config.metricsToken, scrape) },
      ...auditedSurfaces.map((path) => ({ path, handler: denialRecorder(denials) })),
      ...rateLimiters({
        redis,
        prefix: config.keyPrefix,
        limits: config.rateLimits,
        authenticate,
        log,
        onLimited: (limiter) => metrics.rateLimited.inc({ limiter }),
      }),
    ],
    streams: [
      { path: sse.path, handler: sseHandler({ jobs, redis, keys: k, hub, readers: jobReaders, ...streamHooks }, authenticate) },
      {
        path: discussionEventsDoc.path,
        handler: eventStreamHandler<RoomEvent>(streamHooks, authenticate, {
          permission: 'discussions:read',
          watch: (actor, id, afterSeq, fn) => watchDiscussion(roomWatch, actor, id, afterSeq, fn),
          isLast: isLastRoomEvent,
        }),
      },
    ],
  });

  // Ended sessions and old failed sign-ins, purged by one API process at a time (platform/auth/retention.ts).
  const authRetention = startSingletonLoop({
    redis,
    lockKey: k.authRetentionLock,
    intervalMs: config.auth.retention.intervalMs,
    log,
    name: 'auth retention',
    round: () => purgeAuthRecords(db, config.auth.retention),
  });
  const bootstrap = await auth.users.bootstrapAdmin();
  if (bootstrap === 'created' || bootstrap === 'promoted') log.info({ user: config.auth.bootstrapAdmin?.username }, `bootstrap admin ${bootstrap}`);

  const server: HttpServer = createServer(app);
  server.requestTimeout = config.http.requestTimeoutMs * 2;
  server.on('clientError', answerClientError);
  server.on('upgrade', answerUpgradesAsHttp(app, { upgradePath: '/socket.io/', maxBodyBytes: byteSize(config.http.bodyLimit) }));
  const io = attachSocketServer(server, {
    jobs,
    readers: jobReaders,
    redis,
    keys: k,
    hub,
    log,
    prefix: config.keyPrefix,
    pubClient,
    subClient,
    corsOrigins: config.http.corsOrigins,
    auth: { verify: (t) => auth.tokens.authenticate(t), stillValid: (a) => auth.tokens.stillValid(a) },
    onConnections: (n) => metrics.sockets.set({ transport: 'socket.io' }, n),
    rooms: { discussion: discussionRoomKind(roomWatch) },
    connections,
    limits: {
      handshakesPerIp: config.realtime.handshakesPerIp,
      subscribesPerUser: config.realtime.subscribesPerUser,
      windowMs: config.realtime.windowMs,
      slowReaderMaxBytes: config.realtime.slowReaderMaxBytes,
    },
    rateKey: k.socketRate,
    clientIp: clientIpOf(config.http.trustProxy),
  });
  onRevoked = (t) => endCredential(io, t);
  // `ollama_status` { host, up, at } to operators and admins when a host goes down or comes back.
  // Local emit: every API node polls on its own, so each node tells its own sockets once.
  ollama.status.onTransition((t) => io.local.to('operators').emit('ollama_status', t));
  await listen(server, config.port, '0.0.0.0', 'the API', 'PORT');
  const port = (server.address() as AddressInfo).port;
  log.info({ port }, 'api listening');

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      log.info('stopping api');
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      // Not awaited: its callback is the HTTP server's close, which waits for every connection, and an
      // event stream never ends by itself. The sockets are disconnected now; the streams end below, at
      // the latest when the grace is over.
      io.close();
      await hub.close();
      await authRetention.stop().catch(() => {});
      await denials.stop();
      ollama.close();
      await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
      server.closeAllConnections();
      await jobs.close();
      await Promise.all([redis.quit(), hubSubscriber.quit(), pubClient.quit(), subClient.quit()]).catch(() => {});
      vectors.close();
      await db.destroy();
      await mongo.close().catch(() => {});
      log.info('api stopped');
    })());
  return {
    app,
    server,
    io,
    port,
    stop,
    config,
    auth,
    db,
    redis,
    jobs,
    keys: k,
    hub,
    routes,
    audit,
    ollama,
    discussions: discussionDeps,
    authRetention,
    denials,
    code: codeDeps,
    collections: collectionDeps,
    knowledge: knowledgeDeps,
    vectors,
  };
}

// Run directly (not imported by a test): compare as URLs, so a path with spaces or other escaped characters still matches.
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const api = await startApi().catch((err: unknown) => exitOnStartFailure('api', err));
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => {
      api.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}

/**
 * What Node's HTTP parser refuses before any route sees it, as a problem with its code like every
 * other refusal: 431 for a request line and headers over the max header size, 408 for a request that
 * took too long to arrive, 400 for one that is not HTTP/1.1 (the OpenAPI document declares each).
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (!socket.writable) return void socket.destroy();
  endWithProblem(
    socket,
    err.code === 'HPE_HEADER_OVERFLOW'
      ? new AppError('HEADERS_TOO_LARGE', { detail: 'The request line and headers together are larger than this server takes (16 KiB)' })
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new AppError('CLIENT_TIMEOUT', { detail: 'The request did not arrive in time' })
        : new AppError('MALFORMED_REQUEST', { detail: `The request is not valid HTTP/1.1 (${String(err.code ?? 'parse error').slice(0, 40)})` }),
  );
}
