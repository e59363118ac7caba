/**
 * Knowledge contracts (issue 11): sources, the items extracted from them, and
 * the typed links between items, entities and sources. The extractor in
 * platform/knowledge produces these shapes; the API, the `knowledge.extract`
 * job and the SDK take their types from here.
 *
 * Time is bi-temporal: `validFrom`/`validTo` say when a statement holds in the
 * world (as the source tells it), `recordedAt`/`supersededAt` when Parley
 * learnt it and when a newer item replaced it. An update supersedes; it never
 * deletes.
 */
import { z } from 'zod';
import { Instant, nonBlank } from './params.ts';
import { SubmittedJob } from './job-api.ts';

// ── Sources ─────────────────────────────────────────────────────────────────

/** Text that says something: not empty, no NUL (Postgres cannot store it). */
const text = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[^\u0000]*$/, 'must not contain NUL');

/** A message's time as the source gave it: ISO 8601 or free text ("1:56 pm on 8 May, 2023"). Kept verbatim; parsed when possible. */
export const SourceTime = text(200);

export const SourceMessage = z
  .object({
    /** The caller's own id, unique within the source; provenance points at it. */
    id: text(200),
    speaker: text(200),
    text: text(32_000),
    at: SourceTime.optional(),
    /** The id of the message this one answers (the arena's reply structure); absent: the previous message. */
    replyTo: text(200).optional(),
  })
  .strict();
export type SourceMessage = z.infer<typeof SourceMessage>;

export const DocumentSource = z
  .object({
    kind: z.literal('document'),
    title: text(500),
    /** Plain text or Markdown. */
    text: text(1_000_000),
  })
  .strict();
export type DocumentSource = z.infer<typeof DocumentSource>;

export const ConversationSource = z
  .object({
    kind: z.literal('conversation'),
    title: text(500),
    messages: z
      .array(SourceMessage)
      .min(1)
      .max(10_000)
      .describe('The conversation in order. Each message id must be unique within it (400 VALIDATION_FAILED otherwise).'),
  })
  .strict()
  .refine((c) => new Set(c.messages.map((m) => m.id)).size === c.messages.length, { message: 'message ids must be unique', path: ['messages'] });
export type ConversationSource = z.infer<typeof ConversationSource>;

export const Source = z.discriminatedUnion('kind', [DocumentSource, ConversationSource]);
export type Source = z.infer<typeof Source>;

/**
 * Who may read an item. `private`: its owner only (an agent's own memory);
 * `room`: members of the room; `shared`: everyone in the owner's tenant.
 * Storage turns this into a hard prefilter (platform/knowledge `scopeKey`),
 * never a soft tag.
 */
export const KnowledgeScope = z.enum(['private', 'room', 'shared']);
export type KnowledgeScope = z.infer<typeof KnowledgeScope>;

export const ScopeRef = z
  .object({
    scope: KnowledgeScope,
    /** A user id or an agent id. */
    owner: z.string().min(1).max(200),
    /** Required for `room` scope: the discussion's id. */
    room: z.string().min(1).max(200).nullable().default(null),
  })
  .refine((s) => s.scope !== 'room' || s.room !== null, { message: 'room scope needs a room', path: ['room'] });
export type ScopeRef = z.infer<typeof ScopeRef>;

/** A parsed time: the source's own string and, when it could be read, the instant in ISO 8601 (UTC). */
export const ParsedTime = z.object({
  verbatim: z.string(),
  iso: z.string().datetime({ offset: true }).nullable(),
  /** What the verbatim string pins down: a day without a time of day is a day. */
  precision: z.enum(['day', 'minute', 'second']).nullable(),
});
export type ParsedTime = z.infer<typeof ParsedTime>;

// ── Items ───────────────────────────────────────────────────────────────────

export const KnowledgeClass = z.enum(['fact', 'claim', 'definition', 'decision', 'question', 'preference']);
export type KnowledgeClass = z.infer<typeof KnowledgeClass>;

/** A stance towards the message it answers. */
export const Stance = z.enum(['supports', 'rebuts', 'neutral']);
export type Stance = z.infer<typeof Stance>;

export const EntityKind = z.enum(['name', 'code', 'number', 'date']);
export type EntityKind = z.infer<typeof EntityKind>;

export const Entity = z.object({
  kind: EntityKind,
  /** As written. */
  text: z.string(),
  /** The canonical key links use: `code:asr1603`, `name:ada lovelace`, `number:42%`, `date:2023-05-08`. */
  key: z.string(),
  /** Character span in the item's text, [start, end). */
  span: z.tuple([z.number().int().min(0), z.number().int().min(0)]),
  /** Numbers: the value; dates: the parsed time. */
  value: z.union([z.number(), ParsedTime]).optional(),
});
export type Entity = z.infer<typeof Entity>;

export const Provenance = z.object({
  sourceId: z.string(),
  /** The messages (or turns) the item came from; empty for a document. */
  messageIds: z.array(z.string()),
  /** Character span, [start, end), in the message's text (conversations) or the document's text. */
  span: z.tuple([z.number().int().min(0), z.number().int().min(0)]),
  extractor: z.string(),
  extractorVersion: z.string(),
  recordedAt: z.string().datetime({ offset: true }),
});
export type Provenance = z.infer<typeof Provenance>;

export const KnowledgeItem = z.object({
  id: z.string(),
  text: z.string(),
  /** sha256 of the text, hex: the first dedup stage. */
  hash: z.string(),
  class: KnowledgeClass,
  topic: z.string(),
  entities: z.array(Entity),
  stance: Stance,
  /** Who said it (a conversation's speaker; null for a document). */
  speaker: z.string().nullable(),
  provenance: Provenance,
  validFrom: z.string().datetime({ offset: true }).nullable(),
  validTo: z.string().datetime({ offset: true }).nullable(),
  recordedAt: z.string().datetime({ offset: true }),
  supersededAt: z.string().datetime({ offset: true }).nullable(),
  scope: KnowledgeScope,
  owner: z.string(),
  room: z.string().nullable(),
  /**
   * Retention (docs/knowledge.md, Forgetting). `expiresAt`: from then on the item is soft-expired, never
   * returned, and purged after the grace; null: never (no TTL or decay in its scope, or pinned).
   */
  expiresAt: z.string().datetime({ offset: true }).nullable().default(null),
  /** Pinned: never expires and does not decay. */
  pinned: z.boolean().default(false),
  /** Its scope's decay half-life when it was written; null: no decay. */
  halfLifeSeconds: z.number().int().positive().nullable().default(null),
  /** When a source last said it again (a repeat merged into it); decay counts from here. null: recordedAt. */
  confirmedAt: z.string().datetime({ offset: true }).nullable().default(null),
});
export type KnowledgeItem = z.infer<typeof KnowledgeItem>;

// ── Links ───────────────────────────────────────────────────────────────────

export const LinkType = z.enum(['supports', 'rebuts', 'supersedes', 'mentions', 'derived_from']);
export type LinkType = z.infer<typeof LinkType>;

export const NodeRef = z.object({ kind: z.enum(['item', 'entity', 'source']), id: z.string() });
export type NodeRef = z.infer<typeof NodeRef>;

/**
 * A typed edge. `supports`/`rebuts`: item → item (from the answering item to
 * the one it answers); `supersedes`: newer item → older item; `mentions`:
 * item → entity (the entity's key); `derived_from`: item → source.
 */
export const Link = z.object({
  type: LinkType,
  from: NodeRef,
  to: NodeRef,
  /** Why the link exists: `reply-to`, `turn-order`, `entity`, `source`, `dedup-update`. */
  basis: z.string(),
});
export type Link = z.infer<typeof Link>;

/** Every message (or the document) ends with a recorded outcome: nothing is dropped silently. */
export const ExtractionOutcome = z.object({
  /** The message id; null for a document. */
  messageId: z.string().nullable(),
  outcome: z.enum(['ok', 'empty', 'failed']),
  /** New items from it. */
  items: z.number().int().min(0),
  /** Statements that repeated an earlier item of the same speaker: its provenance gained this message id. */
  merged: z.number().int().min(0),
  reason: z.string().optional(),
});
export type ExtractionOutcome = z.infer<typeof ExtractionOutcome>;

// ── Over HTTP (/v1/knowledge) ───────────────────────────────────────────────

export const CreateKnowledgeSource = z
  .object({
    source: Source,
    /** Where its items go. The owner is always the caller. @defaultValue private */
    scope: z
      .object({ scope: KnowledgeScope.default('private'), room: text(200).optional() })
      .strict()
      .refine((s) => (s.scope === 'room') === (s.room !== undefined), { message: 'a room is given exactly when the scope is room', path: ['room'] })
      .default({ scope: 'private' }),
    /**
     * A second pass with the chat model that re-labels the items' classes: one call per message at most,
     * its answer constrained by a JSON schema and validated; refused answers keep the deterministic classes
     * (the job's result says which and why). @defaultValue false
     */
    llmPass: z.boolean().default(false),
  })
  .strict();
export type CreateKnowledgeSource = z.infer<typeof CreateKnowledgeSource>;

export const KnowledgeSourceStatus = z.enum(['pending', 'ready', 'failed']);

export const KnowledgeSourceView = z.object({
  id: z.uuid().toLowerCase(),
  kind: z.enum(['document', 'conversation']),
  title: z.string(),
  scope: KnowledgeScope,
  room: z.string().nullable(),
  /** Messages in a conversation; 1 for a document. */
  messages: z.number().int(),
  /** pending until its `knowledge.extract` job ends. */
  status: KnowledgeSourceStatus,
  /** Items written from it (after dedup). */
  items: z.number().int(),
  error: z.string().nullable(),
  job: z.uuid().toLowerCase().nullable(),
  createdAt: z.iso.datetime(),
  /** One per message (one for a document), in source order; present on GET of one source once extracted. */
  outcomes: z.array(ExtractionOutcome).optional(),
});
export type KnowledgeSourceView = z.infer<typeof KnowledgeSourceView>;

export const KnowledgeSourceList = z.object({ items: z.array(KnowledgeSourceView) });
export type KnowledgeSourceList = z.infer<typeof KnowledgeSourceList>;

export const KnowledgeSourceAccepted = z.object({
  source: KnowledgeSourceView,
  job: SubmittedJob,
});
export type KnowledgeSourceAccepted = z.infer<typeof KnowledgeSourceAccepted>;

export const KnowledgeItemParams = z.object({ id: z.string().min(1).max(1000) });

export const KnowledgeLinks = z.object({
  item: KnowledgeItem,
  links: z.array(Link),
});
export type KnowledgeLinks = z.infer<typeof KnowledgeLinks>;

export const KnowledgeSearchQuery = z
  .object({
    q: nonBlank(1000),
    /** Narrow to one scope; all the caller's scopes when absent. */
    scope: KnowledgeScope.optional(),
    /** With scope=room: which room. */
    room: text(200).optional(),
    /** Only items believed at this instant (recorded by then, not yet superseded). @defaultValue now */
    asOf: Instant.optional(),
    limit: z.coerce.number().int().min(1).max(50).default(10),
  })
  .strict()
  .refine((q) => q.room === undefined || q.scope === 'room', { message: 'room needs scope=room', path: ['room'] });
export type KnowledgeSearchQuery = z.infer<typeof KnowledgeSearchQuery>;

export const KnowledgeSearchHit = z.object({
  item: KnowledgeItem,
  /** Weighted reciprocal rank fusion of the signals times `decay`, higher is better. */
  score: z.number(),
  /** 0.5^(age / half-life) since it was last said, 1 when pinned or without decay. */
  decay: z.number(),
  /** The item's 1-based rank in each signal's list, null where absent. */
  ranks: z.object({
    vector: z.number().int().nullable(),
    text: z.number().int().nullable(),
    entity: z.number().int().nullable(),
    recency: z.number().int().nullable(),
  }),
  /** Why it is believed: where it was extracted (down to the message ids), and every source it stands on. */
  provenance: Provenance,
  sources: z.array(z.string()),
  /**
   * What it replaced: the values it superseded, newest first (up to 3 steps back, through `supersedes`
   * links), each with its own provenance and its end of validity. Empty when it replaced nothing.
   */
  history: z.array(KnowledgeItem),
});
export type KnowledgeSearchHit = z.infer<typeof KnowledgeSearchHit>;

/** An item one link away from a hit (supports, rebuts, supersedes, either direction), believed at the same time. */
export const KnowledgeRelated = z.object({
  item: KnowledgeItem,
  /** The link, and the hit it leads from. */
  via: z.object({ type: LinkType, hit: z.string(), direction: z.enum(['out', 'in']) }),
  provenance: Provenance,
});
export type KnowledgeRelated = z.infer<typeof KnowledgeRelated>;

export const KnowledgeSearchResults = z.object({
  items: z.array(KnowledgeSearchHit),
  /** The one-hop expansion: items linked to the hits that are not hits themselves, at most `limit`. */
  related: z.array(KnowledgeRelated),
  asOf: z.iso.datetime({ offset: true }),
});
export type KnowledgeSearchResults = z.infer<typeof KnowledgeSearchResults>;

// ── Retention: per-scope TTL and decay, pinning ─────────────────────────────

/** How long a scope's items live. Both null: forever (the default). */
export const RetentionSettings = z
  .object({
    /** Items expire this long after they were recorded. null: no TTL. */
    ttlSeconds: z
      .number()
      .int()
      .min(1)
      .max(10 * 365 * 86_400)
      .nullable(),
    /** Their decay score halves every this long since they were last said; below 0.05 they expire. null: no decay. */
    halfLifeSeconds: z
      .number()
      .int()
      .min(1)
      .max(10 * 365 * 86_400)
      .nullable(),
  })
  .strict();
export type RetentionSettings = z.infer<typeof RetentionSettings>;

/** A room's scope names the room; the others name none (one of two shapes, so the schema states the rule). */
export const PutRetention = z.union([
  RetentionSettings.extend({ scope: z.literal('room'), /** Which room. */ room: text(200) }).strict(),
  RetentionSettings.extend({ scope: z.enum(['private', 'shared']) }).strict(),
]);
export type PutRetention = z.infer<typeof PutRetention>;

export const RetentionView = RetentionSettings.extend({
  scope: KnowledgeScope,
  room: z.string().nullable(),
  updatedAt: z.iso.datetime(),
  /** PUT only: stored items of the scope whose expiry was recomputed. */
  itemsUpdated: z.number().int().optional(),
});
export type RetentionView = z.infer<typeof RetentionView>;

export const RetentionList = z.object({ items: z.array(RetentionView) });
export type RetentionList = z.infer<typeof RetentionList>;
