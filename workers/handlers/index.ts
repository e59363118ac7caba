import type { OllamaClient } from '../../platform/ollama/client.ts';
import type { Jobs } from '../../shared/index.ts';
import type { HandlerMap } from '../runtime/handler.ts';
import { codeChunkHandler, type ChunkRunner } from './code-chunk.ts';
import { embedBatchHandler } from './embed-batch.ts';
import { llmChatHandler } from './llm-chat.ts';
import { systemPingHandler } from './system-ping.ts';

export interface HandlerDeps {
  ollama: OllamaClient;
  chatModel: string;
  embedModel: string;
  defaultNumPredict: number;
  chunkPool: ChunkRunner;
}

export function createHandlers(deps: HandlerDeps) {
  return {
    'llm.chat': llmChatHandler(deps),
    'embed.batch': embedBatchHandler(deps),
    'code.chunk': codeChunkHandler({ pool: deps.chunkPool }),
    'system.ping': systemPingHandler(),
  } satisfies HandlerMap<Jobs>;
}
