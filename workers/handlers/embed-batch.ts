/**
 * embed.batch: texts to vectors, `batchSize` texts per upstream call.
 *
 * Two bounds hold while it runs, not only at submit:
 * - the owner's token budget: a guard is opened before the first call and
 *   charged with the prompt tokens Ollama reports after each one, so a budget
 *   lowered (or spent by other jobs) meanwhile stops the batch
 *   BUDGET_EXHAUSTED between calls, with the usage so far;
 * - the kind's result bound (PARLEY_JOB_LIMITS `resultBytes`): after the
 *   first call the size of all the vectors is projected from the ones in
 *   hand, and a batch that cannot fit fails RESULT_TOO_LARGE at once instead
 *   of embedding every text and being refused at the end.
 */
import { JobFailure } from '../../platform/jobs/index.ts';
import type { OllamaClient } from '../../platform/ollama/index.ts';
import type { BudgetGuards } from '../../platform/usage/index.ts';
import type { embedBatch } from '../../shared/index.ts';
import type { Handler } from '../runtime/handler.ts';
import { estimateTokens } from './estimate.ts';

export interface EmbedBatchDeps {
  ollama: OllamaClient;
  embedModel: string;
  /** Token budgets, checked after every upstream call; without it only the reservation made at submit bounds the job. */
  budget?: BudgetGuards;
  /** The kind's result bound in bytes of JSON. @defaultValue no early check (the runtime still refuses an oversized result) */
  maxResultBytes?: number;
}

export function embedBatchHandler(deps: EmbedBatchDeps): Handler<typeof embedBatch> {
  return async (input, ctx) => {
    const model = input.model ?? deps.embedModel;
    ctx.meter({ model, promptTokensEstimate: estimateTokens(input.texts.join('\n')) });
    // Consumption is what Ollama reports, so the guard opens at 0 and is charged as calls return.
    const guard = await deps.budget?.open(ctx.jobId, 0);
    if (guard?.maxCompletionTokens !== undefined && guard.maxCompletionTokens < 1) {
      throw new JobFailure('BUDGET_EXHAUSTED', 'token budget exhausted before the first text was embedded');
    }
    const embeddings: number[][] = [];
    let promptTokens = 0;
    let cacheHits = 0;
    let vectorBytes = 0;
    for (let i = 0; i < input.texts.length; i += input.batchSize) {
      const batch = input.texts.slice(i, i + input.batchSize);
      // Texts already embedded under this model digest come from the cache; only the rest go upstream.
      const res = await deps.ollama.embed({ model, input: batch, truncate: true }, ctx.signal, { cache: input.cache, cacheScope: ctx.ownerId ?? undefined });
      cacheHits += res.cached ?? 0;
      embeddings.push(...res.embeddings);
      promptTokens += res.prompt_eval_count ?? 0;
      ctx.progress({ done: embeddings.length, total: input.texts.length });
      if (deps.maxResultBytes !== undefined && res.embeddings.length > 0) {
        vectorBytes += Buffer.byteLength(JSON.stringify(res.embeddings));
        const projected = Math.round((vectorBytes / embeddings.length) * input.texts.length);
        if (projected > deps.maxResultBytes) {
          throw new JobFailure(
            'RESULT_TOO_LARGE',
            `${input.texts.length} vectors would be about ${projected} bytes of JSON, above the bound of ${deps.maxResultBytes} bytes for embed.batch; submit fewer texts per job`,
            {
              details: { projectedBytes: projected, limitBytes: deps.maxResultBytes, embedded: embeddings.length },
            },
          );
        }
      }
      if (guard) await guard.check(promptTokens);
    }
    return {
      model,
      dimensions: embeddings[0]?.length ?? 0,
      embeddings,
      usage: { model, promptTokens, completionTokens: 0, estimated: false },
      cacheHits,
    };
  };
}
