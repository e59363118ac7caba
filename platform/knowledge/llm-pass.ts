/**
 * The optional second pass with the chat model (issue 11): one call per
 * message (per turn) at most, asking the model to re-label the classes of
 * the items the deterministic extractor found in it. The answer is
 * constrained with Ollama's JSON-schema `format` and validated again here
 * (every item exactly once, by its index, with a known class); anything
 * else (invalid JSON, a cut-off answer, an index out of range, a missing
 * item) keeps the deterministic result, with the reason recorded. The model
 * never adds, drops or rewrites items: provenance stays the extractor's.
 *
 * Pure: the caller makes the call (workers/knowledge/extract-job.ts).
 */
import { z } from 'zod';
import { KnowledgeClass, type KnowledgeItem, type Source } from '../../shared/index.ts';

/** Items per call at most; a message with more keeps its deterministic classes. */
export const llmPassMaxItems = 40;

export interface LlmPassRequest {
  messages: { role: 'system' | 'user'; content: string }[];
  /** A JSON schema for Ollama's `format`. */
  format: Record<string, unknown>;
}

export type LlmPassOutcome = { applied: true; items: KnowledgeItem[]; changed: number } | { applied: false; items: KnowledgeItem[]; reason: string };

const classes = KnowledgeClass.options;

const instructions =
  `Label each numbered statement with one class: ${classes.join(', ')}. ` +
  'fact: a checkable statement; claim: an opinion or argument; definition: says what something is; ' +
  'decision: something agreed or chosen; question: asks something; preference: what someone likes or wants. ' +
  'Answer with JSON only: {"items":[{"index":0,"class":"fact"}, ...]}, one entry per statement.';

/**
 * The most tokens the pass may spend on a source, reserved against its owner's budget when the
 * source is submitted: per message (the whole text, for a document), one call whose prompt holds
 * the instructions, the message and its statements (each a span of the message, numbered), at
 * about 4 characters a token plus the chat template, and an answer of at most `maxTokens`. A
 * message without statements makes no call; settlement gives back what was not spent.
 */
export function llmPassReservation(source: Source, maxTokens: number): number {
  const texts = source.kind === 'document' ? [source.text] : source.messages.map((m) => m.text);
  const framing = instructions.length + 64 + llmPassMaxItems * 6;
  return texts.reduce((sum, t) => sum + Math.ceil((framing + 2 * t.length) / 4) + 32 + maxTokens, 0);
}

/** The call for one message's items, or null when there is nothing to ask (no items, or too many). */
export function llmPassRequest(text: string, items: readonly KnowledgeItem[]): LlmPassRequest | null {
  if (!items.length || items.length > llmPassMaxItems) return null;
  const listed = items.map((it, i) => `${i}. ${it.text}`).join('\n');
  return {
    messages: [
      { role: 'system', content: instructions },
      { role: 'user', content: `Message: ${text}\n\nStatements:\n${listed}` },
    ],
    format: {
      type: 'object',
      properties: {
        items: {
          type: 'array',
          items: {
            type: 'object',
            properties: { index: { type: 'integer', minimum: 0, maximum: items.length - 1 }, class: { type: 'string', enum: [...classes] } },
            required: ['index', 'class'],
          },
        },
      },
      required: ['items'],
    },
  };
}

const Answer = z.object({ items: z.array(z.object({ index: z.number().int().min(0), class: KnowledgeClass }).strict()) }).strict();

/** Applies the model's answer to the items, or keeps them as they are with the reason it was refused. */
export function applyLlmAnswer(items: readonly KnowledgeItem[], answer: string): LlmPassOutcome {
  const keep = (reason: string): LlmPassOutcome => ({ applied: false, items: [...items], reason });
  let json: unknown;
  try {
    json = JSON.parse(answer);
  } catch {
    return keep(`the answer is not JSON (${answer.length} characters)`);
  }
  const parsed = Answer.safeParse(json);
  if (!parsed.success) return keep(`the answer does not match the schema: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  const labels = new Map<number, KnowledgeClass>();
  for (const e of parsed.data.items) {
    if (e.index >= items.length) return keep(`the answer names statement ${e.index} of ${items.length}`);
    if (labels.has(e.index)) return keep(`the answer labels statement ${e.index} twice`);
    labels.set(e.index, e.class);
  }
  if (labels.size !== items.length) return keep(`the answer labels ${labels.size} of ${items.length} statements`);
  let changed = 0;
  const out = items.map((it, i) => {
    const c = labels.get(i)!;
    if (c !== it.class) changed++;
    return c === it.class ? it : { ...it, class: c };
  });
  return { applied: true, items: out, changed };
}
