import { z } from 'zod';
import { ChatMessage, KeepAlive, OllamaFormat, OllamaOptions } from '../ollama-options.ts';
import { Usage } from '../usage.ts';
import { ModelName } from '../model-name.ts';
import { defineJob } from './define.ts';

export const LlmChatInput = z
  .object({
    /** Defaults to the configured chat model. */
    model: ModelName.optional(),
    messages: z.array(ChatMessage).min(1).max(500),
    options: OllamaOptions.optional(),
    format: OllamaFormat.optional(),
    keep_alive: KeepAlive.optional(),
    /**
     * Response cache (docs/caching.md). Deterministic requests (temperature 0 or a seed) are answered
     * from the cache when possible; `bypass` always asks the model and does not store. @defaultValue 'default'
     */
    cache: z.enum(['default', 'bypass']).optional(),
  })
  .strict();
export type LlmChatInput = z.infer<typeof LlmChatInput>;

export const LlmChatResult = z.object({
  model: z.string(),
  text: z.string(),
  doneReason: z.string().optional(),
  usage: Usage,
  timings: z.object({ firstTokenMs: z.number().nullable(), totalMs: z.number() }),
  cached: z.boolean().optional(),
});
export type LlmChatResult = z.infer<typeof LlmChatResult>;

export const LlmChatProgress = z.object({ tokens: z.number().int() });

export const llmChat = defineJob({
  kind: 'llm.chat',
  v: 1,
  queue: 'llm',
  input: LlmChatInput,
  result: LlmChatResult,
  progress: LlmChatProgress,
  defaults: { priority: 'interactive', attempts: 3, backoff: { baseMs: 500, maxMs: 15_000 } },
  metered: true,
  summary: 'One chat completion against Ollama, streamed token by token.',
});
