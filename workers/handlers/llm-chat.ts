import type { BudgetGuards } from '../../platform/budgets.ts';
import type { OllamaClient } from '../../platform/ollama/client.ts';
import { JobFailure } from '../../platform/job-failure.ts';
import type { llmChat } from '../../shared/index.ts';
import type { Handler } from '../runtime/handler.ts';
import { estimateTokens } from './estimate.ts';

export function llmChatHandler(deps: { ollama: OllamaClient; chatModel: string; defaultNumPredict: number; budget?: BudgetGuards }): Handler<typeof llmChat> {
  return async (input, ctx) => {
    const model = input.model ?? deps.chatModel;
    // Never send an unbounded generation upstream.
    const options = { ...input.options, num_predict: input.options?.num_predict ?? deps.defaultNumPredict };
    // The owner's token budget: before metering, so a job refused here records no usage. Its headroom
    // bounds num_predict, so Ollama itself stops at the budget and reports exact counts; a budget lowered
    // mid-stream is caught by the checks below (the job then fails BUDGET_EXHAUSTED with partial usage).
    const guard = await deps.budget?.open(ctx.jobId, estimateTokens(input.messages.map((m) => m.content).join('\n')));
    if (guard?.maxCompletionTokens !== undefined) {
      if (guard.maxCompletionTokens < 1) throw new JobFailure('BUDGET_EXHAUSTED', 'token budget exhausted: no tokens left for this job in its owner\'s budget');
      options.num_predict = Math.max(1, Math.min(options.num_predict, guard.maxCompletionTokens));
    }
    ctx.meter({ model, promptTokensEstimate: estimateTokens(input.messages.map((m) => m.content).join('\n')) });
    const t0 = performance.now();
    let firstTokenMs: number | null = null;
    let text = '';
    let emitted = 0;
    let last: { done_reason?: string; prompt_eval_count?: number; eval_count?: number; cached?: boolean } | undefined;
    // A cache hit (deterministic request seen before) arrives as one chunk with the whole text and a final chunk with `cached`.
    for await (const chunk of deps.ollama.chat({ model, messages: input.messages, options, format: input.format, keep_alive: input.keep_alive }, ctx.signal, { cache: input.cache })) {
      const piece = chunk.message?.content ?? '';
      if (piece) {
        firstTokenMs ??= performance.now() - t0;
        text += piece;
        emitted += 1;
        ctx.emitTokens(piece, 1);
        if (emitted % 32 === 0) ctx.progress({ tokens: emitted });
        if (guard && emitted % guard.every === 0) await guard.check(emitted);
      }
      if (chunk.done) last = chunk;
    }
    if (!last) throw new JobFailure('UPSTREAM_UNAVAILABLE', 'ollama stream ended without a final chunk');
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
