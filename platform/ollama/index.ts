/**
 * The one Ollama client: routing over every host, resilience (breaker,
 * AIMD limiter, retries, timeouts), the response cache, the status poller,
 * and model management on every host.
 */
export { CircuitBreaker } from './breaker.ts';
export type { BreakerState } from './breaker.ts';
export { ResponseCache } from './cache.ts';
export { OllamaClient, createOllamaClient } from './client.ts';
export type { CallOptions, ChatChunk, ChatRequest, OllamaClientOptions } from './client.ts';
export { AimdLimiter, defaultAimdOptions } from './limiter.ts';
export { OllamaModels, faultOf, pullFaultOf } from './models.ts';
export type {
  CreateRequest,
  HostFault,
  HostInventory,
  Inventory,
  ManageFault,
  ModelPlacement,
  OnHost,
  PsModel,
  PullOptions,
  ShowModel,
  TagModel,
} from './models.ts';
export { observeOllamaStatus } from './status.ts';
export type { OllamaStatus } from './status.ts';
