/**
 * Composition root of a worker process: `npm run workers`.
 * Builds config, connections, the Ollama client, the chunking pool and the
 * handlers once, then runs every queue's BullMQ worker and the sweeper.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { hostname } from 'node:os';
import { createBudgets } from '../platform/usage/index.ts';
import { loadConfig } from '../platform/config.ts';
import { exitOnStartFailure, usableCpus } from '../platform/host.ts';
import { connectDb } from '../platform/connections/index.ts';
import { createChildJobs, createJobLifecycle, streamSettings } from '../platform/jobs/index.ts';
import { createRoomMemory } from '../platform/discussions/index.ts';
import { createDiscussionStore } from '../platform/discussions/index.ts';
import { createTranscripts } from '../platform/discussions/index.ts';
import { keys } from '../platform/keys.ts';
import { createLogger } from '../platform/observability/index.ts';
import { connectMongo } from '../platform/connections/index.ts';
import { breakerStates, createWorkerMetrics, primeWorkerCounters } from '../platform/observability/index.ts';
import { ResponseCache } from '../platform/ollama/index.ts';
import { createOllamaClient } from '../platform/ollama/index.ts';
import { connectRedis } from '../platform/connections/index.ts';
import { QueueName, vectorsMaintain, codeIndex, jobs as jobDefinitions } from '../shared/index.ts';
import { createCodeStore, submitJob } from '../platform/code/index.ts';
import { SYSTEM_USER_ID } from '../platform/jobs/index.ts';
import { startSingletonLoop } from '../platform/connections/index.ts';
import { Embedder, createCollectionStore, createIndexCatalog, openVectorStore, redisLock } from '../platform/vectors/index.ts';
import { KnowledgeStore, createKnowledgeRecords, purgeExpiredKnowledge } from '../platform/knowledge/index.ts';
import { knowledgeMemory } from './knowledge/memory.ts';
import { transcriptFeed } from './knowledge/transcripts.ts';
import { createChunkPool } from './chunking/pool.ts';
import type { DiscussionRuntime } from './discussions/runtime.ts';
import { startRoomWatchdog } from './discussions/watchdog.ts';
import { createHandlers } from './handlers/index.ts';
import { WorkerHost } from './runtime/host.ts';
import { startOpsServer } from './runtime/ops-server.ts';
import { startSweeper } from './runtime/sweeper.ts';

export async function startWorkers(env: NodeJS.ProcessEnv = process.env, opts: { queues?: QueueName[] } = {}) {
  const config = loadConfig(env);
  const log = createLogger('workers', config.logLevels.workers);
  const workerId = `${hostname()}:${process.pid}`;
  const redis = connectRedis(config.redisUrl, { name: 'parley-worker' });
  const bullConnection = connectRedis(config.redisUrl, { blocking: true, name: 'parley-worker-bull' });
  const subscriber = connectRedis(config.redisUrl, { blocking: true, name: 'parley-worker-sub' });
  // One connection per concurrent job slot (each job writes its record), plus a few for the sweeper and watchdog.
  const served = opts.queues ?? config.workers.queues ?? QueueName.options;
  const db = connectDb(config.databaseUrl, { pool: Math.min(64, served.reduce((n, q) => n + config.workers.concurrency[q], 0) + 4) });
  const budgets = createBudgets({ db, redis, prefix: config.keyPrefix, checkEveryTokens: config.budgets.checkEveryTokens, log });
  const budgetGuards = budgets.guards((id) => jobs.ownerOf(id));
  const k = keys(config.keyPrefix);
  // The one job lifecycle of this process: records, hand-offs, terminal writes (which settle budgets), streams.
  const jobs = createJobLifecycle({ db, redis, keys: k, keyPrefix: config.keyPrefix, streams: streamSettings(config.streams), budgets, log });
  const metrics = createWorkerMetrics();
  primeWorkerCounters(metrics, {
    queues: served,
    kinds: Object.values(jobDefinitions)
      .filter((d) => served.includes(d.queue))
      .map((d) => d.kind),
    hosts: config.ollama.hosts,
  });
  const cache = config.cache.enabled
    ? new ResponseCache(redis, { prefix: config.keyPrefix, chatTtlS: config.cache.chatTtlS, embedTtlS: config.cache.embedTtlS })
    : undefined;
  const ollama = createOllamaClient(config.ollama, {
    cache,
    hooks: {
      onCache: (kind, outcome, n) => metrics.cacheRequests.inc({ kind, outcome }, n),
      onRetry: (e) => metrics.ollamaRetries.inc({ host: e.host, reason: e.overload ? 'overload' : e.fault }),
      onLimit: (host, c) => metrics.ollamaLimitChanges.inc({ host, reason: c.reason }),
    },
  });
  // Routing prefers hosts where the model is loaded; the poller keeps that view fresh.
  void ollama.status.start();
  const chunkPool = createChunkPool({ threads: config.workers.chunkThreads ?? usableCpus() });
  const mongo = connectMongo(config.mongoUrl, { appName: 'parley-worker' });
  const discussions: DiscussionRuntime = {
    db,
    redis,
    keys: k,
    keyPrefix: config.keyPrefix,
    log,
    ollama,
    jobs,
    streamTtlSeconds: config.streams.ttlSeconds,
    roomStreamMaxLen: config.rooms.streamMaxLen,
    rooms: createDiscussionStore(db),
    transcripts: createTranscripts(mongo),
    memory: createRoomMemory(redis, k),
    defaults: { numCtx: 2048, numPredict: config.ollama.defaultNumPredict, summaryModel: config.ollama.chatModel },
    budget: budgetGuards,
  };
  // The vector store (LanceDB) and code intelligence: writes to a table are serialised across processes by a Redis lock.
  const vectors = await openVectorStore({ ...config.vectors, lock: redisLock(redis, k.vectorTableLock) });
  const catalog = createIndexCatalog(db, config.keyPrefix);
  const embedder = new Embedder(ollama, { batchSize: config.code.embedBatch });
  const codeStore = createCodeStore(db);
  const collections = createCollectionStore(db);
  // Knowledge: items in LanceDB, their record in Postgres; agents remember through the discussion runtime's hook.
  const knowledgeStore = new KnowledgeStore({ vectors, embedder, catalog, model: config.ollama.embedModel });
  const knowledgeRecords = createKnowledgeRecords(db);
  discussions.longTermMemory = knowledgeMemory({ knowledge: knowledgeStore, records: knowledgeRecords, log });
  discussions.feedTranscript = transcriptFeed({ records: knowledgeRecords, jobs, log });
  const submitDeps = { jobs };
  const handlers = createHandlers({
    ollama,
    chatModel: config.ollama.chatModel,
    embedModel: config.ollama.embedModel,
    defaultNumPredict: config.ollama.defaultNumPredict,
    chunkPool,
    budget: budgetGuards,
    embedMaxResultBytes: config.jobLimits.of('embed.batch').resultBytes,
    discussions,
    knowledge: {
      records: knowledgeRecords,
      knowledge: knowledgeStore,
      llm: { ollama, model: config.knowledge.llmModel, maxTokens: config.knowledge.llmMaxTokens },
      budget: budgetGuards,
    },
    modelPull: { ollama, timeoutMs: config.modelOps.pullTimeoutMs, idleTimeoutMs: config.modelOps.pullIdleTimeoutMs },
    vectors: {
      codeIndex: { store: codeStore, vectors, catalog, embedder, pool: chunkPool, children: createChildJobs(jobs), config: config.code },
      collectionUpsert: { collections, vectors, catalog, embedder, window: config.code.embedWindow, embedBatch: config.code.embedBatch },
      maintain: {
        vectors,
        catalog,
        embedder,
        code: codeStore,
        collections,
        config: {
          embedModel: config.code.embedModel,
          embedWindow: config.code.embedWindow,
          embedBatch: config.code.embedBatch,
          retiredGraceMs: config.vectors.retiredGraceMs,
          knowledgePurgeGraceMs: config.vectors.knowledgePurgeGraceMs,
        },
        knowledge: knowledgeStore,
        purgeKnowledge: (before, signal) => purgeExpiredKnowledge({ knowledge: knowledgeStore, records: knowledgeRecords }, before, signal),
        submitIndex: async (repositoryId, generation, key) => {
          const repo = await codeStore.getRepository(repositoryId);
          if (repo) await submitJob(submitDeps, codeIndex, { repositoryId, generation }, { ownerId: repo.owner_id, key });
        },
      },
    },
  });

  const host = new WorkerHost({
    config,
    bullConnection,
    subscriber,
    jobs,
    keys: k,
    log,
    metrics,
    modelLabel: (m) => ollama.status.modelLabel(m),
    handlers,
    queues: served,
  });
  const observeOllama = () => {
    for (const h of ollama.hostSnapshots()) {
      metrics.ollamaConcurrencyLimit.set({ host: h.host }, h.limit);
      metrics.ollamaInFlight.set({ host: h.host }, h.inFlight);
      const current = h.breaker.replace('-', '_');
      for (const state of breakerStates) metrics.ollamaBreakerState.set({ host: h.host, state }, state === current ? 1 : 0);
    }
    metrics.ollamaWaiting.set(ollama.waiting);
  };
  observeOllama();
  // This process's own health, readiness and metrics (nothing is merged through Redis). It listens
  // before the queues start, so /readyz says "not taking jobs" until they do.
  let stopping: Promise<void> | undefined;
  const ops = await startOpsServer({
    host: config.workerOps.host,
    port: config.workerOps.port,
    registry: metrics.registry,
    token: config.metricsToken,
    log,
    checks: { redis: () => redis.ping(), postgres: () => db.raw('select 1') },
    accepting: () => stopping === undefined && host.accepting,
    beforeScrape: observeOllama,
  });
  await host.start();
  const sweeper = startSweeper({ config, redis, jobs, keys: k, log });
  const watchdog = startRoomWatchdog(discussions, { intervalMs: config.workers.sweepIntervalMs });
  // Vector maintenance as a recorded job once per interval, submitted by whichever worker process holds the lock.
  // The key names the period and this process's start, so a worker that starts (perhaps with a new embedding
  // model) runs a round at once, and one holder submits one job per period.
  const startedAt = Date.now();
  const maintainScheduler = startSingletonLoop({
    redis,
    lockKey: k.vectorsMaintainLock,
    intervalMs: config.vectors.maintainIntervalMs,
    log,
    name: 'vectors-maintain',
    round: async () => {
      const period = Math.floor(Date.now() / config.vectors.maintainIntervalMs);
      await submitJob(submitDeps, vectorsMaintain, { period }, { ownerId: SYSTEM_USER_ID, key: `vectors.maintain:${period}:${workerId}:${startedAt}` });
    },
  });
  log.info({ workerId, queues: served, concurrency: config.workers.concurrency, opsPort: ops.port }, 'workers ready');

  const stop = () =>
    (stopping ??= (async () => {
      log.info('stopping workers');
      await sweeper.stop();
      await watchdog.stop();
      await maintainScheduler.stop();
      await host.stop();
      await chunkPool.close();
      vectors.close();
      ollama.close();
      await jobs.close();
      await Promise.all([redis.quit(), bullConnection.quit(), subscriber.quit()]).catch(() => {});
      await db.destroy();
      await mongo.close().catch(() => {});
      await ops.close();
      log.info('workers stopped');
    })());
  return { stop, host, sweeper, config, metrics, ollama, opsPort: ops.port, vectors, catalog };
}

// Run directly (not imported by a test): compare as URLs, so a path with spaces or other escaped characters still matches.
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const workers = await startWorkers().catch((err: unknown) => exitOnStartFailure('workers', err));
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => {
      workers.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}
