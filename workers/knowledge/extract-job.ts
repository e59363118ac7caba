/**
 * The `knowledge.extract` handler: a source → deterministic extraction
 * (platform/knowledge, pure) → vectors through the one Ollama client →
 * dedup against what the tenant already holds in the same scope (exact,
 * normalised, then the double gate with the embedding cosine as similarity;
 * value changes supersede, near-names stay apart) → one LanceDB upsert →
 * one Postgres transaction with one outcome per message, the refs and the
 * links.
 *
 * Retries land the same: item ids derive from the source, message and span,
 * stored items from this same source are never dedup candidates, and the
 * record replaces an earlier attempt's. A final failure records every
 * message as `failed` with the reason: nothing ends without an outcome.
 */
import { JobFailure, toJobError } from '../../platform/jobs/index.ts';
import {
  DedupIndex,
  extractSource,
  extractorName,
  extractorVersion,
  fingerprint,
  scopeKey,
  applyLlmAnswer,
  llmPassMaxItems,
  llmPassRequest,
  withRetention,
  type KnowledgeRecords,
  type KnowledgeStore,
} from '../../platform/knowledge/index.ts';
import type { ExtractionOutcome, KnowledgeExtractInput, KnowledgeExtractResult, KnowledgeItem, Link, knowledgeExtract } from '../../shared/index.ts';
import type { OllamaClient } from '../../platform/ollama/index.ts';
import type { BudgetGuards } from '../../platform/usage/index.ts';
import type { Handler, HandlerContext } from '../runtime/handler.ts';

export interface KnowledgeExtractDeps {
  records: KnowledgeRecords;
  knowledge: KnowledgeStore;
  /** The optional LLM pass: the chat model, and the most tokens its answer may take. */
  llm?: { ollama: OllamaClient; model: string; maxTokens: number };
  /**
   * The owner's token budget, checked after each call of the LLM pass: once it is passed, the pass
   * stops and the remaining messages keep the deterministic result. Without it, the reservation made
   * at submit bounds the pass.
   */
  budget?: BudgetGuards;
}

/** Stored items compared with each new one: the nearest by vector, same speaker. */
const dedupCandidates = 8;

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na && nb ? dot / Math.sqrt(na * nb) : 0;
}

export function knowledgeExtractHandler(deps: KnowledgeExtractDeps): Handler<typeof knowledgeExtract> {
  return async (input, ctx) => {
    const src = await deps.records.getSource(input.sourceId);
    if (!src || src.status === 'forgetting') throw new JobFailure('HANDLER_FAILED', `source ${input.sourceId} does not exist (forgotten?)`);
    const key = scopeKey(input.scope);
    if (key !== src.scope_key) throw new JobFailure('HANDLER_FAILED', `source ${input.sourceId} is recorded in scope ${src.scope_key}, the job names ${key}`);
    const x = extractSource(input.source, { sourceId: src.id, scope: input.scope, recordedAt: src.created_at.toISOString() });
    try {
      const llm = input.llmPass && deps.llm ? await llmPass(deps.llm, input.source, x.items, src.owner_id, ctx, deps.budget) : null;
      if (llm) x.items = llm.items;
      // Pinned: the job embeds, compares and writes in one generation's space, whatever switches meanwhile.
      const repo = deps.knowledge.forTenant(src.owner_id, { pinned: true });
      ctx.progress({ done: 0, total: x.items.length });
      const texts = x.items.map((i) => i.text);
      const vectors = new Map<string, ArrayLike<number>>();
      (await repo.embed(texts, ctx.signal)).forEach((v, i) => vectors.set(texts[i]!, v));

      // Against what is stored: a repeat merges into the stored item (this source gains a ref to it), an update supersedes it.
      const mergedInto = new Map<string, string>();
      const superseded: KnowledgeItem[] = [];
      const extraLinks: Link[] = [];
      let supersedes = x.supersedes;
      if (x.items.length && (await repo.count([key])) > 0) {
        for (const [n, item] of x.items.entries()) {
          const near = (await repo.nearest([key], vectors.get(item.text)!, { limit: dedupCandidates, excludeSource: src.id })).filter(
            (s) => s.speaker === item.speaker,
          );
          if (near.length) {
            (
              await repo.embed(
                near.map((s) => s.text),
                ctx.signal,
              )
            ).forEach((v, i) => vectors.set(near[i]!.text, v));
            const index = new DedupIndex<KnowledgeItem>({
              similarity: (a, b) => (vectors.has(a) && vectors.has(b) ? cosine(vectors.get(a)!, vectors.get(b)!) : 0),
            });
            for (const s of near) index.add(fingerprint(s.text, s.entities), s);
            const seen = index.check(fingerprint(item.text, item.entities));
            if (seen?.verdict.verdict === 'duplicate') mergedInto.set(item.id, seen.match.id);
            else if (seen?.verdict.verdict === 'update' && item.supersededAt === null && !superseded.some((s) => s.id === seen.match.id)) {
              superseded.push({ ...seen.match, supersededAt: item.recordedAt, validTo: item.validFrom ?? seen.match.validTo });
              extraLinks.push({ type: 'supersedes', from: { kind: 'item', id: item.id }, to: { kind: 'item', id: seen.match.id }, basis: 'dedup-update' });
              supersedes++;
            }
          }
          ctx.progress({ done: n + 1, total: x.items.length });
        }
      }
      if (ctx.signal.aborted) throw ctx.signal.reason;

      // The scope's retention: new items get their expiry; an item said again is confirmed now, which
      // restarts its decay (and moves its expiry when decay sets it).
      const settings = await deps.records.retentionOf(src.owner_id, key);
      const written = x.items.filter((i) => !mergedInto.has(i.id)).map((i) => withRetention(i, settings));
      const confirmed = (await repo.get([key], [...new Set(mergedInto.values())])).map((s) =>
        withRetention({ ...s, confirmedAt: src.created_at.toISOString() }, settings),
      );
      await repo.upsert(written, { vectors, signal: ctx.signal });
      await repo.rewrite([...superseded, ...confirmed]);

      const outcomes: ExtractionOutcome[] = x.outcomes.map((o) => ({ ...o }));
      for (const item of x.items) {
        if (!mergedInto.has(item.id)) continue;
        const o = outcomes.find((o) => o.messageId === (item.provenance.messageIds[0] ?? null));
        if (o) (o.items--, o.merged++);
      }
      // Links that named a merged item now name the stored one it repeats.
      const repoint = (ref: Link['from']) => (ref.kind === 'item' && mergedInto.has(ref.id) ? { kind: 'item' as const, id: mergedInto.get(ref.id)! } : ref);
      const links = [...x.links, ...extraLinks].map((l) => ({ ...l, from: repoint(l.from), to: repoint(l.to) }));
      const refs = [...written.map((i) => i.id), ...mergedInto.values()];
      const finished = await deps.records.finishExtraction(src.id, src.owner_id, key, { outcomes, refs, links, items: written.length, status: 'ready' });
      if (!finished) {
        // Forgotten while extracting: what was just written must not outlive it.
        await repo.delete(
          [key],
          written.map((i) => i.id),
        );
        throw new JobFailure('HANDLER_FAILED', `source ${src.id} was forgotten during extraction`);
      }
      return {
        sourceId: src.id,
        extractor: extractorName,
        extractorVersion,
        items: written.length,
        duplicates: x.duplicates + mergedInto.size,
        supersedes,
        links: links.length,
        outcomes,
        llm: llm?.summary ?? null,
      };
    } catch (err) {
      // Final: a failure that will not be retried, or a cancel (a shutdown or a newer attempt runs it again).
      if ((ctx.abortReason === undefined && !ctx.willRetry(toJobError(err))) || ctx.abortReason === 'cancelled') {
        const reason = ctx.abortReason === 'cancelled' ? 'the extraction job was cancelled' : err instanceof Error ? err.message : String(err);
        const outcomes = x.outcomes.map((o) => ({
          messageId: o.messageId,
          outcome: 'failed' as const,
          items: 0,
          merged: 0,
          reason: o.outcome === 'failed' ? (o.reason ?? reason) : `not stored: ${reason}`,
        }));
        await deps.records
          .finishExtraction(src.id, src.owner_id, key, { outcomes, refs: [], links: [], items: 0, status: 'failed', error: reason })
          .catch((e: unknown) => ctx.log.error({ err: e }, 'recording failed outcomes'));
      }
      throw err;
    }
  };
}

/**
 * The optional second pass (platform/knowledge/llm-pass.ts): per message with items, one call to the chat
 * model with a JSON-schema `format`; an answer that does not validate, or a call that fails, keeps the
 * deterministic classes and says why. Never fails the job: the deterministic result is always there.
 */
async function llmPass(
  llm: NonNullable<KnowledgeExtractDeps['llm']>,
  source: KnowledgeExtractInput['source'],
  items: KnowledgeItem[],
  ownerId: string,
  ctx: HandlerContext,
  budget?: BudgetGuards,
): Promise<{ items: KnowledgeItem[]; summary: NonNullable<KnowledgeExtractResult['llm']> }> {
  const texts = new Map<string | null, string>(source.kind === 'document' ? [[null, source.text]] : source.messages.map((m) => [m.id, m.text]));
  const byMessage = new Map<string | null, KnowledgeItem[]>();
  for (const it of items) {
    const id = it.provenance.messageIds[0] ?? null;
    byMessage.set(id, [...(byMessage.get(id) ?? []), it]);
  }
  const refined = new Map<string, KnowledgeItem>();
  // usage: Ollama's counts from each call's final chunk (a failed call reports none; a cache hit is free).
  const usage = { model: llm.model, promptTokens: 0, completionTokens: 0 };
  const out = { calls: 0, applied: 0, changed: 0, fallbacks: [] as { messageId: string | null; reason: string }[], usage };
  // The guard stops the pass once the owner's limit is passed, counting the calls of every attempt (they reach
  // the job's reservation through addUsage), so a low estimate (text of many tokens per character) or a
  // retry cannot run on past it by more than one call.
  const guard = await budget?.open(ctx.jobId, 0);
  let exhausted: string | undefined =
    guard?.maxCompletionTokens !== undefined && guard.maxCompletionTokens < 1 ? 'the token budget was already spent' : undefined;
  for (const [messageId, mine] of byMessage) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (exhausted) {
      out.fallbacks.push({ messageId, reason: `${exhausted}; the deterministic result stands` });
      continue;
    }
    const req = llmPassRequest(texts.get(messageId) ?? mine.map((i) => i.text).join(' '), mine);
    if (!req) {
      out.fallbacks.push({ messageId, reason: `${mine.length} statements, more than the ${llmPassMaxItems} one call labels` });
      continue;
    }
    out.calls++;
    let answer = '';
    try {
      for await (const chunk of llm.ollama.chat(
        { model: llm.model, messages: req.messages, format: req.format, options: { temperature: 0, num_predict: llm.maxTokens } },
        ctx.signal,
      )) {
        answer += chunk.message?.content ?? '';
        if (chunk.done) {
          const call = { model: llm.model, promptTokens: chunk.prompt_eval_count ?? 0, completionTokens: chunk.eval_count ?? 0, estimated: false };
          usage.promptTokens += call.promptTokens;
          usage.completionTokens += call.completionTokens;
          // Each call's tokens are the source owner's consumption (usage_daily and the budget, through the job's
          // fenced addUsage) as soon as it ends: a pass cut short by a cancel or a shutdown has its calls counted.
          if (call.promptTokens + call.completionTokens > 0)
            await ctx.addUsage(ownerId, call).catch((err: unknown) => ctx.log.warn({ err }, 'could not record the LLM pass usage'));
        }
      }
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      out.fallbacks.push({ messageId, reason: `the model call failed: ${err instanceof Error ? err.message : String(err)}` });
      continue;
    }
    if (guard) {
      try {
        // The pass's tokens are all consumed beside the job's own call (addUsage), which the check counts for
        // every attempt: its own call consumed none.
        await guard.check(0);
      } catch (err) {
        if (!(err instanceof JobFailure && err.code === 'BUDGET_EXHAUSTED')) throw err;
        // This call's answer is still used (its tokens are spent); the calls after it are not made.
        exhausted = `the token budget ran out during the pass (${err.message})`;
      }
    }
    const r = applyLlmAnswer(mine, answer);
    if (!r.applied) {
      out.fallbacks.push({ messageId, reason: r.reason });
      continue;
    }
    out.applied++;
    out.changed += r.changed;
    for (const it of r.items) refined.set(it.id, it);
  }
  return { summary: out, items: items.map((i) => refined.get(i.id) ?? i) };
}
