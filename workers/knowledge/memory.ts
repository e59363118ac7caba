/**
 * Agents remember: the discussion runtime's `longTermMemory` hook over the
 * knowledge index. For the agent about to speak, it searches the room
 * owner's knowledge (the tenant) with the latest text in the room (what the
 * turn answers; the topic is already in the prompt) or, at the start, the
 * room's topic, in the scopes the
 * agent may read — its own private memory, this room's, and shared — and
 * keeps the best hits while they fit the memory budget (estimated tokens).
 * Another agent's private memory is never among the scopes.
 *
 * A forked room inherits its parent room's memory up to the fork point only:
 * parent-room items recorded before the fork, and of the parent's turns
 * (message ids `turn-<n>`, platform/knowledge feed.ts) only those at or
 * before the fork turn.
 *
 * Each note says who said it and where, from the item's provenance: an
 * agent's turn or an audience message of this room (or of the parent room),
 * recognised by the room feed's own source ids (`roomStatementOf`), else the
 * speaker and the title of the source it was extracted from (a document or
 * an imported conversation). The assembler shows notes as attributed
 * quotations, never as instructions (workers/discussions/context.ts).
 *
 * Memory is an aid to a turn, not a condition of it: if the index cannot be
 * read, the turn goes on without memories and the failure is logged.
 */
import { readableScopes, roomStatementOf, turnOf, type KnowledgeRecords, type KnowledgeStore } from '../../platform/knowledge/index.ts';
import type { DiscussionRow } from '../../platform/discussions/index.ts';
import type { KnowledgeItem } from '../../shared/index.ts';
import type { Logger } from '../../platform/observability/index.ts';
import type { MemoryNote } from '../discussions/context.ts';
import type { LongTermMemory } from '../discussions/runtime.ts';
import { estimateTokens } from '../handlers/estimate.ts';

export interface MemoryOptions {
  knowledge: KnowledgeStore;
  log: Logger;
  /** Memory tokens per turn at most. @defaultValue 1024 (issue 11) */
  budgetTokens?: number;
  /** Hits considered before the budget cuts. @defaultValue 20 */
  candidates?: number;
  /** Source titles for attribution; none → a note from outside the room names its scope instead of its source. */
  records?: Pick<KnowledgeRecords, 'getSource'>;
}

export function knowledgeMemory(opts: MemoryOptions): LongTermMemory {
  const budget = opts.budgetTokens ?? 1024;
  const candidates = opts.candidates ?? 20;
  return async (room, agent, recent = '') => {
    try {
      const scopes = readableScopes({ id: agent.id, rooms: room.parent_id ? [room.id, room.parent_id] : [room.id] });
      const hits = await opts.knowledge.forTenant(room.owner_id).search({ scopes, text: recent.trim() ? recent.slice(-1000) : room.topic, limit: candidates });
      const kept: KnowledgeItem[] = [];
      let used = 0;
      for (const h of hits) {
        if (!inherited(room, h.item)) continue;
        const cost = estimateTokens(h.item.text) + 1;
        if (used + cost > budget) continue;
        kept.push(h.item);
        used += cost;
      }
      const notes: MemoryNote[] = [];
      for (const item of kept) notes.push({ id: item.id, text: item.text, ...(await attribution(room, item, opts.records)) });
      return notes;
    } catch (err) {
      opts.log.warn({ err, room: room.id, agent: agent.id }, 'long-term memory unavailable for this turn');
      return [];
    }
  };
}

/** Whether a hit is the room's to remember: anything but a parent room's item past the fork point. */
function inherited(room: Pick<DiscussionRow, 'parent_id' | 'fork_turn' | 'created_at'>, item: KnowledgeItem): boolean {
  if (room.parent_id === null || item.scope !== 'room' || item.room !== room.parent_id) return true;
  if (Date.parse(item.recordedAt) > room.created_at.getTime()) return false;
  const turns = item.provenance.messageIds.map(turnOf).filter((n) => n !== null);
  return room.fork_turn === null || turns.every((n) => n <= room.fork_turn!);
}

/** Who said an item and where, as its provenance tells. */
async function attribution(
  room: Pick<DiscussionRow, 'id' | 'owner_id'>,
  item: KnowledgeItem,
  records: MemoryOptions['records'],
): Promise<Pick<MemoryNote, 'speaker' | 'where'>> {
  const statement = roomStatementOf(item);
  if (statement) {
    const which = statement.room === room.id ? 'this room' : 'the room this one was forked from';
    return statement.kind === 'turn'
      ? { speaker: item.speaker, where: `turn ${statement.turn} of ${which}` }
      : { speaker: item.speaker === null ? 'an audience member' : `audience member ${item.speaker}`, where: `an audience message in ${which}` };
  }
  const source = await records?.getSource(item.provenance.sourceId, room.owner_id);
  if (source) return { speaker: item.speaker, where: `${source.kind} "${source.title}"` };
  return {
    speaker: item.speaker,
    where:
      item.scope === 'private'
        ? 'your private notes'
        : item.scope === 'room'
          ? `notes of ${item.room === room.id ? 'this room' : 'the room this one was forked from'}`
          : 'shared notes',
  };
}
