/** Logs and metrics for every process. */
export { createLogger } from './log.ts';
export type { Logger } from './log.ts';
export { breakerStates, createApiMetrics, createWorkerMetrics, primeApiCounters, primeWorkerCounters } from './metrics.ts';
export { isScrapeToken } from './scrape-token.ts';
export type { ApiMetrics, WorkerMetrics } from './metrics.ts';
export { timedCheck } from './check.ts';
export type { CheckResult } from './check.ts';
