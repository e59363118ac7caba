import type { BudgetGuards } from '../../platform/usage/index.ts';
import type { OllamaClient } from '../../platform/ollama/index.ts';
import type { llmChat } from '../../shared/index.ts';
import type { Handler } from '../runtime/handler.ts';
import { newChatRun, streamChat } from './chat-stream.ts';
import { estimateTokens } from './estimate.ts';

export function llmChatHandler(deps: { ollama: OllamaClient; chatModel: string; defaultNumPredict: number; budget?: BudgetGuards }): Handler<typeof llmChat> {
  return async (input, ctx) => {
    const model = input.model ?? deps.chatModel;
    // Never send an unbounded generation upstream.
    const options = { ...input.options, num_predict: input.options?.num_predict ?? deps.defaultNumPredict };
    // A cache hit (deterministic request seen before) arrives as one chunk with the whole text and a final chunk with `cached`.
    const run = newChatRun();
    const last = await streamChat(
      deps.ollama,
      ctx,
      { model, messages: input.messages, options, format: input.format, keep_alive: input.keep_alive },
      {
        budget: deps.budget,
        promptTokensEstimate: estimateTokens(input.messages.map((m) => m.content).join('\n')),
        exhausted: "token budget exhausted: no tokens left for this job in its owner's budget",
        call: { cache: input.cache, cacheScope: ctx.ownerId ?? undefined },
        progressAt: (n) => n % 32 === 0,
      },
      run,
    );
    const { text, emitted, firstTokenMs, t0 } = run;
    return {
      model,
      text,
      doneReason: last.done_reason,
      usage: { model, promptTokens: last.prompt_eval_count ?? 0, completionTokens: last.eval_count ?? emitted, estimated: last.eval_count === undefined },
      timings: { firstTokenMs, totalMs: performance.now() - t0 },
      // A hit's usage is 0 tokens (no compute was spent; see docs/caching.md).
      ...(last.cached ? { cached: true } : {}),
    };
  };
}
