/**
 * A room's statements as knowledge: each committed agent turn (the workers)
 * and each human message posted into the room (the API) becomes a
 * one-message conversation source in the room's scope (tenant: the room's
 * owner; author: whoever said it), extracted by its own `knowledge.extract`
 * job. The source and job ids derive from `key`, so feeding the same
 * statement twice (a retried turn, a repeated call) submits nothing new.
 */
import { submitJob } from '../code/index.ts';
import { namedUuid, type JobLifecycle } from '../jobs/index.ts';
import { knowledgeExtract, type KnowledgeItem, type ScopeRef } from '../../shared/index.ts';
import { scopeKey } from './knowledge-index.ts';
import type { KnowledgeRecords } from './records.ts';

export interface RoomFeedDeps {
  records: KnowledgeRecords;
  jobs: Pick<JobLifecycle, 'accept'>;
}

type Room = { id: string; owner_id: string; topic: string };

interface RoomStatement {
  /** Unique per statement: `knowledge.extract:room:<room>:turn:<n>` or `…:message:<id>`. */
  key: string;
  /** The message id provenance names (`turn-<n>`, `msg-<id>`). */
  messageId: string;
  /** Who said it: an agent's id, or a user's. */
  author: string;
  speaker: string;
  text: string;
  /** What the source's title adds to the room's topic: `turn 3`, `message from ada`. */
  label: string;
}

/** A committed agent turn as room knowledge (provenance `turn-<n>`). */
export function feedTurn(deps: RoomFeedDeps, room: Room, t: { turn: number; agentId: string; agentName: string; text: string }): Promise<boolean> {
  return feedRoomStatement(deps, room, {
    key: `knowledge.extract:room:${room.id}:turn:${t.turn}`,
    messageId: `turn-${t.turn}`,
    author: t.agentId,
    speaker: t.agentName,
    text: t.text,
    label: `turn ${t.turn}`,
  });
}

/** A human message posted into the room as room knowledge (provenance `msg-<id>`). */
export function feedMessage(deps: RoomFeedDeps, room: Room, m: { id: string; authorId: string; authorName: string; text: string }): Promise<boolean> {
  return feedRoomStatement(deps, room, {
    key: `knowledge.extract:room:${room.id}:message:${m.id}`,
    messageId: `msg-${m.id}`,
    author: m.authorId,
    speaker: m.authorName,
    text: m.text,
    label: `message from ${m.authorName}`,
  });
}

/** The turn a provenance message id names (`turn-<n>`), or null for anything else. */
export function turnOf(messageId: string): number | null {
  const m = /^turn-(\d+)$/.exec(messageId);
  return m ? Number(m[1]) : null;
}

/**
 * Which room statement an item came from, when its source is the room feed's own: the source id
 * derives from the statement's key, so an imported conversation with a message id `turn-3` or
 * `msg-x` cannot pass for an agent's turn or an audience message. Null for anything else.
 */
export function roomStatementOf(
  item: Pick<KnowledgeItem, 'room' | 'provenance'>,
): { room: string; kind: 'turn'; turn: number } | { room: string; kind: 'message' } | null {
  const { room } = item;
  const [messageId] = item.provenance.messageIds;
  if (room === null || messageId === undefined) return null;
  const turn = turnOf(messageId);
  if (turn !== null) return item.provenance.sourceId === namedUuid(`knowledge.extract:room:${room}:turn:${turn}:source`) ? { room, kind: 'turn', turn } : null;
  const m = /^msg-(.+)$/.exec(messageId);
  if (m && item.provenance.sourceId === namedUuid(`knowledge.extract:room:${room}:message:${m[1]}:source`)) return { room, kind: 'message' };
  return null;
}

/** Records the statement as a source and submits its extraction; false when it had been fed before. */
async function feedRoomStatement(deps: RoomFeedDeps, room: Room, s: RoomStatement): Promise<boolean> {
  if (!s.text.trim()) return false;
  const scope: ScopeRef = { scope: 'room', owner: s.author, room: room.id };
  const source = {
    kind: 'conversation' as const,
    title: `${room.topic.slice(0, 400)} (${s.label})`,
    messages: [{ id: s.messageId, speaker: s.speaker, text: s.text.slice(0, 32_000) }],
  };
  const sourceId = namedUuid(`${s.key}:source`);
  if (await deps.records.getSource(sourceId)) return false;
  await deps.records.insertSource({
    id: sourceId,
    owner_id: room.owner_id,
    kind: 'conversation',
    title: source.title,
    scope: 'room',
    scope_owner: s.author,
    room: room.id,
    scope_key: scopeKey(scope),
    messages: 1,
  });
  const job = await submitJob({ jobs: deps.jobs }, knowledgeExtract, { sourceId, source, scope, llmPass: false }, { ownerId: room.owner_id, key: s.key });
  await deps.records.setJob(sourceId, job.id);
  return true;
}
