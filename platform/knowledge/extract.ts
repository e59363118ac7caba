/**
 * Deterministic extraction: a source to knowledge items, links and one
 * outcome per message. Pure and synchronous; a conversation is processed
 * message by message (`SourceExtractor.add`), as a room's turns are committed.
 *
 * Per sentence: span, entities, class, topic, stance. Items of one speaker
 * are deduplicated among themselves (a duplicate adds its message id to the
 * provenance of the item it repeats; an update supersedes the older item).
 * Speakers never merge: "I prefer tea" from two people is two items.
 */
import type { ExtractionOutcome, KnowledgeItem, Link, ScopeRef, Source, SourceMessage, Stance } from '../../shared/index.ts';
import { classify, stanceOf } from './classify.ts';
import { parseTime } from './dates.ts';
import { DedupIndex, fingerprint, normalise, type DedupOptions } from './dedup.ts';
import { extractEntities, namesUsedMidSentence } from './entities.ts';
import { answeredMessage, headItem, stanceLinks, structuralLinks } from './links.ts';
import { splitSentences } from './sentences.ts';
import { contentWords } from './text.ts';
import { assignTopic } from './topic.ts';

export const extractorName = 'parley.deterministic';
export const extractorVersion = '1.0.0';

export interface ExtractRequest {
  sourceId: string;
  scope: ScopeRef;
  /** When Parley records the items (transaction time), ISO 8601. */
  recordedAt: string;
  dedup?: DedupOptions;
}

export interface Extraction {
  items: KnowledgeItem[];
  links: Link[];
  outcomes: ExtractionOutcome[];
  /** Sentences merged into an item they repeat. */
  duplicates: number;
  /** Items that supersede an older one. */
  supersedes: number;
}

/** A statement worth keeping: two content words, or one and an entity or a question mark ("Thanks!" and "Hi all" are not). */
function substantive(text: string, entityCount: number): boolean {
  const n = contentWords(text).length;
  return n >= 2 || (n >= 1 && (entityCount > 0 || text.trimEnd().endsWith('?')));
}

export class SourceExtractor {
  readonly items: KnowledgeItem[] = [];
  readonly links: Link[] = [];
  readonly outcomes: ExtractionOutcome[] = [];
  duplicates = 0;
  supersedes = 0;
  private readonly messages: SourceMessage[] = [];
  private readonly itemsByMessage = new Map<string, KnowledgeItem[]>();
  private readonly dedup = new Map<string, DedupIndex<KnowledgeItem>>();
  /** Within this source: which item superseded an item (for a value said again after it changed). */
  private readonly supersededBy = new Map<string, KnowledgeItem>();
  private readonly knownNames = new Set<string>();

  constructor(private readonly req: ExtractRequest) {}

  /** One message of a conversation (or a room's committed turn). Never throws: a failure is its outcome. */
  add(message: SourceMessage): ExtractionOutcome {
    let outcome: ExtractionOutcome;
    try {
      const at = message.at === undefined ? null : parseTime(message.at).iso;
      const before = this.duplicates;
      const items = this.extractText(message.text, { messageId: message.id, speaker: message.speaker, validFrom: at });
      const merged = this.duplicates - before;
      this.itemsByMessage.set(message.id, items);
      const answered = answeredMessage(message, this.messages);
      const target = answered && headItem(this.itemsByMessage.get(answered.message.id) ?? []);
      if (answered && target) this.links.push(...stanceLinks(items, target, answered.basis));
      outcome = { messageId: message.id, outcome: items.length + merged > 0 ? 'ok' : 'empty', items: items.length, merged };
    } catch (cause) {
      outcome = { messageId: message.id, outcome: 'failed', items: 0, merged: 0, reason: cause instanceof Error ? cause.message : String(cause) };
    }
    this.messages.push(message);
    this.outcomes.push(outcome);
    return outcome;
  }

  /** A whole document: one outcome, items with spans in the document's text. */
  addDocument(text: string): ExtractionOutcome {
    let outcome: ExtractionOutcome;
    try {
      const before = this.duplicates;
      const items = this.extractText(text, { messageId: null, speaker: null, validFrom: null });
      const merged = this.duplicates - before;
      outcome = { messageId: null, outcome: items.length + merged > 0 ? 'ok' : 'empty', items: items.length, merged };
    } catch (cause) {
      outcome = { messageId: null, outcome: 'failed', items: 0, merged: 0, reason: cause instanceof Error ? cause.message : String(cause) };
    }
    this.outcomes.push(outcome);
    return outcome;
  }

  result(): Extraction {
    return { items: this.items, links: this.links, outcomes: this.outcomes, duplicates: this.duplicates, supersedes: this.supersedes };
  }

  /** The items new in this text (duplicates are merged into earlier ones and not returned). */
  private extractText(text: string, origin: { messageId: string | null; speaker: string | null; validFrom: string | null }): KnowledgeItem[] {
    const sentences = splitSentences(text);
    for (const n of namesUsedMidSentence(sentences.map((s) => s.text))) this.knownNames.add(n);
    const out: KnowledgeItem[] = [];
    let openingStance: Stance = 'neutral';
    for (const [i, s] of sentences.entries()) {
      const ownStance = stanceOf(s.text);
      if (i === 0) openingStance = ownStance;
      const entities = extractEntities(s.text, this.knownNames);
      if (!substantive(s.text, entities.length)) continue;
      const fp = fingerprint(s.text, entities);
      const { req } = this;
      const item: KnowledgeItem = {
        id: `${req.sourceId}:${origin.messageId ?? 'doc'}:${s.start}`,
        text: s.text,
        hash: fp.hash,
        class: classify(s.text, entities).class,
        topic: assignTopic(s.text, entities),
        entities,
        stance: ownStance !== 'neutral' ? ownStance : out.length === 0 ? openingStance : 'neutral',
        speaker: origin.speaker,
        provenance: {
          sourceId: req.sourceId,
          messageIds: origin.messageId === null ? [] : [origin.messageId],
          span: [s.start, s.end],
          extractor: extractorName,
          extractorVersion,
          recordedAt: req.recordedAt,
        },
        validFrom: origin.validFrom,
        validTo: null,
        recordedAt: req.recordedAt,
        supersededAt: null,
        scope: req.scope.scope,
        owner: req.scope.owner,
        room: req.scope.room,
        expiresAt: null,
        pinned: false,
        halfLifeSeconds: null,
        confirmedAt: null,
      };
      const speakerKey = origin.speaker ?? '';
      let index = this.dedup.get(speakerKey);
      if (!index) this.dedup.set(speakerKey, (index = new DedupIndex(req.dedup)));
      const seen = index.check(fp, (stored) => stored.supersededAt === null);
      // What a repeat repeats: the item itself while it is believed; once it was superseded (A, then B,
      // then A again), what is believed now in its place, the head of its chain.
      let target: KnowledgeItem | undefined = seen?.match;
      if (seen?.verdict.verdict === 'duplicate') {
        while (target && target.supersededAt !== null) target = this.supersededBy.get(target.id);
        if (target && (target === seen.match || target.hash === fp.hash || normalise(target.text) === fp.normalised)) {
          const ids = target.provenance.messageIds;
          if (origin.messageId !== null && !ids.includes(origin.messageId)) ids.push(origin.messageId);
          this.duplicates++;
          continue;
        }
        // A value said again after it changed is believed again: a new item, superseding the one in its place.
      } else if (seen?.verdict.verdict !== 'update' || seen.match.supersededAt !== null) target = undefined;
      if (target) {
        target.supersededAt = item.recordedAt;
        if (item.validFrom !== null) target.validTo = item.validFrom;
        this.supersededBy.set(target.id, item);
        this.links.push({ type: 'supersedes', from: { kind: 'item', id: item.id }, to: { kind: 'item', id: target.id }, basis: 'dedup-update' });
        this.supersedes++;
      }
      index.add(fp, item);
      out.push(item);
    }
    this.items.push(...out);
    this.links.push(...structuralLinks(out, this.req.sourceId));
    return out;
  }
}

/** A whole source at once. */
export function extractSource(source: Source, req: ExtractRequest): Extraction {
  const x = new SourceExtractor(req);
  if (source.kind === 'document') x.addDocument(source.text);
  else for (const m of source.messages) x.add(m);
  return x.result();
}
