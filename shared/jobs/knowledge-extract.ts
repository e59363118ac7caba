/**
 * `knowledge.extract`: a source's text to knowledge items, links and one
 * outcome per message. The handler (workers/knowledge/extract-job.ts)
 * extracts deterministically, dedups against the tenant's stored items,
 * embeds, and writes through the LanceDB-backed knowledge index
 * (docs/knowledge.md). `POST /v1/knowledge/sources` submits it.
 */
import { z } from 'zod';
import { ExtractionOutcome, ScopeRef, Source } from '../knowledge-api.ts';
import { defineJob } from './define.ts';

export const KnowledgeExtractInput = z.object({
  sourceId: z.string().min(1).max(200),
  source: Source,
  /** Where the items go: owner and scope are ANDed into every read and write of them. */
  scope: ScopeRef,
  /**
   * The optional second pass with the chat model (one call per turn at most,
   * constrained by a JSON schema and validated; the deterministic result is the fallback).
   * @defaultValue false
   */
  llmPass: z.boolean().default(false),
});
export type KnowledgeExtractInput = z.infer<typeof KnowledgeExtractInput>;

export const KnowledgeExtractResult = z.object({
  sourceId: z.string(),
  extractor: z.string(),
  extractorVersion: z.string(),
  /** Items written, after dedup. */
  items: z.number().int().min(0),
  /** Items that matched one already stored (exact, normalised or the double gate) and were merged into it. */
  duplicates: z.number().int().min(0),
  /** Items that supersede an older one (a value changed). */
  supersedes: z.number().int().min(0),
  links: z.number().int().min(0),
  /** One per message (or one for a document), in source order. */
  outcomes: z.array(ExtractionOutcome),
  /**
   * The optional LLM pass: model calls (one per message with items, at most), answers applied, classes
   * changed, each refusal with its reason, and the tokens the calls cost (Ollama's counts; also added to
   * the source owner's usage). null: not asked for. `usage` is absent in results recorded before it existed.
   */
  llm: z
    .object({
      calls: z.number().int().min(0),
      applied: z.number().int().min(0),
      changed: z.number().int().min(0),
      fallbacks: z.array(z.object({ messageId: z.string().nullable(), reason: z.string() })),
      usage: z.object({ model: z.string(), promptTokens: z.number().int().min(0), completionTokens: z.number().int().min(0) }).optional(),
    })
    .nullable()
    .default(null),
});
export type KnowledgeExtractResult = z.infer<typeof KnowledgeExtractResult>;

export const KnowledgeExtractProgress = z.object({ done: z.number().int(), total: z.number().int() });

export const knowledgeExtract = defineJob({
  kind: 'knowledge.extract',
  v: 1,
  // Extraction is cheap; what the job waits on is embedding the items.
  queue: 'embed',
  input: KnowledgeExtractInput,
  result: KnowledgeExtractResult,
  progress: KnowledgeExtractProgress,
  defaults: { priority: 'batch', attempts: 3, streamRetentionS: 600, backoff: { baseMs: 1000, maxMs: 15_000 } },
  // Embedding tokens are not recorded as usage, as for collection.upsert. The optional LLM pass's tokens are
  // (usage_daily, through the job's fenced addUsage), against a reservation POST /v1/knowledge/sources makes.
  metered: false,
  reserves: true,
  // Submitted by POST /v1/knowledge/sources and the room transcript feed, which record the source first;
  // through POST /v1/jobs a caller could name someone else's source id.
  internal: true,
  summary: 'A source (document or conversation) to knowledge items with provenance, links and one outcome per message.',
});
