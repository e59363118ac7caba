import type { OllamaClient } from '../../platform/ollama/index.ts';
import type { embedBatch } from '../../shared/index.ts';
import type { Handler } from '../runtime/handler.ts';
import { estimateTokens } from './estimate.ts';

export function embedBatchHandler(deps: { ollama: OllamaClient; embedModel: string }): Handler<typeof embedBatch> {
  return async (input, ctx) => {
    const model = input.model ?? deps.embedModel;
    ctx.meter({ model, promptTokensEstimate: estimateTokens(input.texts.join('\n')) });
    const embeddings: number[][] = [];
    let promptTokens = 0;
    let cacheHits = 0;
    for (let i = 0; i < input.texts.length; i += input.batchSize) {
      const batch = input.texts.slice(i, i + input.batchSize);
      // Texts already embedded under this model digest come from the cache; only the rest go upstream.
      const res = await deps.ollama.embed({ model, input: batch, truncate: true }, ctx.signal, { cache: input.cache });
      cacheHits += res.cached ?? 0;
      embeddings.push(...res.embeddings);
      promptTokens += res.prompt_eval_count ?? 0;
      ctx.progress({ done: embeddings.length, total: input.texts.length });
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
