/**
 * Composition root of a worker process: `npm run workers`.
 * Builds config, connections, the Ollama client, the chunking pool and the
 * handlers once, then runs every queue's BullMQ worker and the sweeper.
 */
import { availableParallelism, hostname } from 'node:os';
import { loadConfig } from '../platform/config.ts';
import { connectDb } from '../platform/db.ts';
import { createJobStore } from '../platform/job-store.ts';
import { keys } from '../platform/keys.ts';
import { createLogger } from '../platform/log.ts';
import { createWorkerMetrics, publishMetrics, removePublishedMetrics } from '../platform/metrics.ts';
import { OllamaClient } from '../platform/ollama/client.ts';
import { createQueues, closeQueues } from '../platform/queues.ts';
import { connectRedis } from '../platform/redis.ts';
import { QueueName } from '../shared/index.ts';
import { createChunkPool } from './chunking/pool.ts';
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
  const db = connectDb(config.databaseUrl, { pool: 10 });
  const store = createJobStore(db);
  const k = keys(config.keyPrefix);
  const metrics = createWorkerMetrics();
  const ollama = new OllamaClient({ host: config.ollama.host, connectTimeoutMs: config.ollama.connectTimeoutMs, firstTokenTimeoutMs: config.ollama.firstTokenTimeoutMs, idleTimeoutMs: config.ollama.idleTimeoutMs });
  const chunkPool = createChunkPool({ threads: config.workers.chunkThreads ?? Math.max(1, availableParallelism()) });
  const handlers = createHandlers({ ollama, chatModel: config.ollama.chatModel, embedModel: config.ollama.embedModel, defaultNumPredict: config.ollama.defaultNumPredict, chunkPool });
  const queues = createQueues(redis, config.keyPrefix);

  const host = new WorkerHost({ config, redis, bullConnection, subscriber, store, keys: k, log, metrics, handlers: handlers as never, queues: opts.queues });
  await host.start();
  const sweeper = startSweeper({ config, redis, queues, store, keys: k, log });
  const publish = () => publishMetrics(redis, config.keyPrefix, workerId, metrics.registry).catch((err: unknown) => log.warn({ err }, 'metrics publish failed'));
  const metricsTimer = setInterval(publish, 5000);
  void publish();
  log.info({ workerId, queues: opts.queues ?? QueueName.options, concurrency: config.workers.concurrency }, 'workers ready');

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      log.info('stopping workers');
      clearInterval(metricsTimer);
      await sweeper.stop();
      await host.stop();
      await chunkPool.close();
      await removePublishedMetrics(redis, config.keyPrefix, workerId).catch(() => {});
      await closeQueues(queues);
      await Promise.all([redis.quit(), bullConnection.quit(), subscriber.quit()]).catch(() => {});
      await db.destroy();
      log.info('workers stopped');
    })());
  return { stop, host, sweeper, config };
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
