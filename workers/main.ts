/**
 * Composition root of a worker process: `npm run workers`.
 * Builds config, connections, the Ollama client, the chunking pool and the
 * handlers once, then runs every queue's BullMQ worker and the sweeper.
 */
import { availableParallelism, hostname } from 'node:os';
import { createBudgets, jobOwnerLookup, settleFinishedJobs } from '../platform/usage/index.ts';
import { loadConfig } from '../platform/config.ts';
import { connectDb } from '../platform/connections/index.ts';
import { createJobStore } from '../platform/jobs/index.ts';
import { createRoomMemory } from '../platform/discussions/index.ts';
import { createDiscussionStore } from '../platform/discussions/index.ts';
import { createTranscripts } from '../platform/discussions/index.ts';
import { keys } from '../platform/keys.ts';
import { createLogger } from '../platform/observability/index.ts';
import { connectMongo } from '../platform/connections/index.ts';
import { createWorkerMetrics, publishMetrics, removePublishedMetrics } from '../platform/observability/index.ts';
import { ResponseCache } from '../platform/ollama/index.ts';
import { createOllamaClient } from '../platform/ollama/index.ts';
import { createQueues, closeQueues } from '../platform/jobs/index.ts';
import { connectRedis } from '../platform/connections/index.ts';
import { QueueName, vectorsMaintain, codeIndex } from '../shared/index.ts';
import { createCodeStore, submitJob } from '../platform/code/index.ts';
import { SYSTEM_USER_ID } from '../platform/jobs/index.ts';
import { startSingletonLoop } from '../platform/connections/index.ts';
import { Embedder, createCollectionStore, createIndexCatalog, openVectorStore, redisLock } from '../platform/vectors/index.ts';
import { createChunkPool } from './chunking/pool.ts';
import type { DiscussionRuntime } from './discussions/runtime.ts';
import { startRoomWatchdog } from './discussions/watchdog.ts';
import { createHandlers } from './handlers/index.ts';
import { WorkerHost } from './runtime/host.ts';
import { startSweeper } from './runtime/sweeper.ts';

export async function startWorkers(env: NodeJS.ProcessEnv = process.env, opts: { queues?: QueueName[] } = {}) {
  const config = loadConfig(env);
  const log = createLogger('workers', config.logLevel);
  const workerId = `${hostname()}:${process.pid}`;
  const redis = connectRedis(config.redisUrl, { name: 'parley-worker' });
  const bullConnection = connectRedis(config.redisUrl, { blocking: true, name: 'parley-worker-bull' });
  const subscriber = connectRedis(config.redisUrl, { blocking: true, name: 'parley-worker-sub' });
  // One connection per concurrent job slot (each job writes its record), plus a few for the sweeper and watchdog.
  const served = opts.queues ?? QueueName.options;
  const db = connectDb(config.databaseUrl, { pool: Math.min(64, served.reduce((n, q) => n + config.workers.concurrency[q], 0) + 4) });
  const budgets = createBudgets({ db, redis, prefix: config.keyPrefix, checkEveryTokens: config.budgets.checkEveryTokens, log });
  // Every terminal write settles the job's token budget (reserved at submit) with its recorded usage.
  const store = createJobStore(db, { keyPrefix: config.keyPrefix, onFinished: settleFinishedJobs(budgets, log) });
  const k = keys(config.keyPrefix);
  const metrics = createWorkerMetrics();
  const cache = config.cache.enabled ? new ResponseCache(redis, { prefix: config.keyPrefix, chatTtlS: config.cache.chatTtlS, embedTtlS: config.cache.embedTtlS }) : undefined;
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
  const chunkPool = createChunkPool({ threads: config.workers.chunkThreads ?? Math.max(1, availableParallelism()) });
  const queues = createQueues(redis, config.keyPrefix);
  const mongo = connectMongo(config.mongoUrl, { appName: 'parley-worker' });
  const discussions: DiscussionRuntime = {
    db, redis, keys: k, keyPrefix: config.keyPrefix, queues, log, ollama, jobs: store, streamTtlSeconds: config.streams.ttlSeconds,
    rooms: createDiscussionStore(db), transcripts: createTranscripts(mongo), memory: createRoomMemory(redis, k),
    defaults: { numCtx: 2048, numPredict: config.ollama.defaultNumPredict, summaryModel: config.ollama.chatModel },
    budget: budgets.guards(jobOwnerLookup(db)),
  };
  // The vector store (LanceDB) and code intelligence: writes to a table are serialised across processes by a Redis lock.
  const vectors = await openVectorStore({
    uri: config.vectors.uri,
    lock: redisLock(redis, k.vectorTableLock),
    maintenance: { vectorIndexMinRows: config.vectors.vectorIndexMinRows, vectorIndex: config.vectors.vectorIndex, versionRetentionMs: config.vectors.versionRetentionMs },
  });
  const catalog = createIndexCatalog(db, config.keyPrefix);
  const embedder = new Embedder(ollama, { batchSize: config.code.embedBatch });
  const codeStore = createCodeStore(db);
  const collections = createCollectionStore(db);
  const submitDeps = { db, queues, keyPrefix: config.keyPrefix };
  const handlers = createHandlers({ ollama, chatModel: config.ollama.chatModel, embedModel: config.ollama.embedModel, defaultNumPredict: config.ollama.defaultNumPredict, chunkPool,
    budget: budgets.guards(jobOwnerLookup(db)),
    discussions,
    modelPull: { host: config.ollama.host, timeoutMs: config.modelOps.pullTimeoutMs, idleTimeoutMs: config.modelOps.pullIdleTimeoutMs },
    vectors: {
      codeIndex: { store: codeStore, vectors, catalog, embedder, pool: chunkPool, config: config.code },
      collectionUpsert: { collections, vectors, catalog, embedder, window: config.code.embedWindow, embedBatch: config.code.embedBatch },
      maintain: {
        vectors, catalog, embedder, code: codeStore, collections,
        config: { embedModel: config.code.embedModel, embedWindow: config.code.embedWindow, embedBatch: config.code.embedBatch, retiredGraceMs: config.vectors.retiredGraceMs },
        submitIndex: async (repositoryId, generation, key) => {
          const repo = await codeStore.getRepository(repositoryId);
          if (repo) await submitJob(submitDeps, codeIndex, { repositoryId, generation }, { ownerId: repo.owner_id, key });
        },
      },
    },
  });

  const host = new WorkerHost({ config, redis, bullConnection, subscriber, store, keys: k, log, metrics, handlers: handlers as never, queues: opts.queues });
  await host.start();
  const sweeper = startSweeper({ config, redis, queues, store, keys: k, log });
  const watchdog = startRoomWatchdog(discussions, { intervalMs: config.workers.sweepIntervalMs });
  // Vector maintenance as a recorded job once per interval, submitted by whichever worker process holds the lock.
  // The key names the period and this process's start, so a worker that starts (perhaps with a new embedding
  // model) runs a round at once, and one holder submits one job per period.
  const startedAt = Date.now();
  const maintainScheduler = startSingletonLoop({
    redis, lockKey: k.vectorsMaintainLock, intervalMs: config.vectors.maintainIntervalMs, log, name: 'vectors-maintain',
    round: async () => {
      const period = Math.floor(Date.now() / config.vectors.maintainIntervalMs);
      await submitJob(submitDeps, vectorsMaintain, { period }, { ownerId: SYSTEM_USER_ID, key: `vectors.maintain:${period}:${workerId}:${startedAt}` });
    },
  });
  const observeOllama = () => {
    for (const h of ollama.hostSnapshots()) {
      metrics.ollamaConcurrencyLimit.set({ host: h.host }, h.limit);
      metrics.ollamaInFlight.set({ host: h.host }, h.inFlight);
      metrics.ollamaBreakerState.set({ host: h.host }, h.breaker === 'closed' ? 0 : h.breaker === 'half-open' ? 1 : 2);
    }
    metrics.ollamaWaiting.set(ollama.waiting);
  };
  const publish = () => {
    observeOllama();
    return publishMetrics(redis, config.keyPrefix, workerId, metrics.registry).catch((err: unknown) => log.warn({ err }, 'metrics publish failed'));
  };
  const metricsTimer = setInterval(publish, 5000);
  void publish();
  log.info({ workerId, queues: opts.queues ?? QueueName.options, concurrency: config.workers.concurrency }, 'workers ready');

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      log.info('stopping workers');
      clearInterval(metricsTimer);
      await sweeper.stop();
      await watchdog.stop();
      await maintainScheduler.stop();
      await host.stop();
      await chunkPool.close();
      vectors.close();
      ollama.close();
      await removePublishedMetrics(redis, config.keyPrefix, workerId).catch(() => {});
      await closeQueues(queues);
      await Promise.all([redis.quit(), bullConnection.quit(), subscriber.quit()]).catch(() => {});
      await db.destroy();
      await mongo.close().catch(() => {});
      log.info('workers stopped');
    })());
  return { stop, host, sweeper, config, metrics, ollama, vectors, catalog };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const workers = await startWorkers();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => {
      workers.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}
