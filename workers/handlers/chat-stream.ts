/**
 * What every metered chat handler does around Ollama's stream (llm.chat,
 * discussion.turn): open the owner's token budget, whose headroom bounds
 * num_predict so Ollama itself stops at the budget and reports exact
 * counts; meter the job; stream, passing each piece on and checking the
 * budget every `guard.every` pieces (a budget lowered mid-stream fails the
 * job BUDGET_EXHAUSTED with partial usage); and insist on a final chunk.
 *
 * The caller passes `run` and reads it after a failure too: it holds the
 * text streamed so far.
 */
import type { BudgetGuards } from '../../platform/usage/index.ts';
import { JobFailure } from '../../platform/jobs/index.ts';
import type { CallOptions, ChatChunk, ChatRequest, OllamaClient } from '../../platform/ollama/index.ts';
import type { HandlerContext } from '../runtime/handler.ts';

export interface ChatRun {
  /** performance.now() when the request went out. */
  t0: number;
  text: string;
  /** Pieces (≈ tokens) received. */
  emitted: number;
  firstTokenMs: number | null;
}

export function newChatRun(): ChatRun {
  return { t0: performance.now(), text: '', emitted: 0, firstTokenMs: null };
}

export async function streamChat(
  ollama: OllamaClient,
  ctx: HandlerContext<unknown>,
  req: ChatRequest & { options: NonNullable<ChatRequest['options']> & { num_predict: number } },
  opts: {
    budget?: BudgetGuards;
    promptTokensEstimate: number;
    /** The BUDGET_EXHAUSTED message when the budget has no room left for this job at all. */
    exhausted: string;
    call?: CallOptions;
    /** Each piece, after ctx.emitTokens. */
    onPiece?: (piece: string) => void;
    /** Whether to report progress after the n-th piece. */
    progressAt: (n: number) => boolean;
  },
  run: ChatRun,
): Promise<ChatChunk> {
  const guard = await opts.budget?.open(ctx.jobId, opts.promptTokensEstimate);
  if (guard?.maxCompletionTokens !== undefined) {
    if (guard.maxCompletionTokens < 1) throw new JobFailure('BUDGET_EXHAUSTED', opts.exhausted);
    req.options.num_predict = Math.max(1, Math.min(req.options.num_predict, guard.maxCompletionTokens));
  }
  ctx.meter({ model: req.model, promptTokensEstimate: opts.promptTokensEstimate });
  run.t0 = performance.now();
  let last: ChatChunk | undefined;
  for await (const chunk of ollama.chat(req, ctx.signal, opts.call)) {
    const piece = chunk.message?.content ?? '';
    if (piece) {
      run.firstTokenMs ??= performance.now() - run.t0;
      run.text += piece;
      run.emitted += 1;
      ctx.emitTokens(piece, 1);
      opts.onPiece?.(piece);
      if (opts.progressAt(run.emitted)) ctx.progress({ tokens: run.emitted });
      if (guard && run.emitted % guard.every === 0) await guard.check(run.emitted);
    }
    if (chunk.done) last = chunk;
  }
  if (!last) throw new JobFailure('UPSTREAM_UNAVAILABLE', 'ollama stream ended without a final chunk');
  return last;
}
