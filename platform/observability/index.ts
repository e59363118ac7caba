/** Logs and metrics for every process. */
export { createLogger } from './log.ts';
export type { Logger } from './log.ts';
export { createApiMetrics, createWorkerMetrics, publishMetrics, removePublishedMetrics, scrape } from './metrics.ts';
export type { ApiMetrics, WorkerMetrics } from './metrics.ts';
