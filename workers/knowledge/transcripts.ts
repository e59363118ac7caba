/**
 * Room transcripts as knowledge: each committed turn becomes a one-message
 * conversation source in the room's scope (tenant: the room's owner; author:
 * the speaking agent), extracted by its own `knowledge.extract` job. The job
 * id derives from the room and turn, so a turn retried after its commit
 * submits nothing new. Feeding is an aid, not part of the turn: a failure is
 * logged and the room goes on.
 */
import { submitJob } from '../../platform/code/index.ts';
import { namedUuid, type JobLifecycle } from '../../platform/jobs/index.ts';
import { scopeKey, type KnowledgeRecords } from '../../platform/knowledge/index.ts';
import type { Logger } from '../../platform/observability/index.ts';
import { knowledgeExtract, type ScopeRef } from '../../shared/index.ts';
import type { CommittedTurn, TranscriptFeed } from '../discussions/runtime.ts';

export interface TranscriptFeedDeps {
  records: KnowledgeRecords;
  jobs: Pick<JobLifecycle, 'accept'>;
  log: Logger;
}

export function transcriptFeed(deps: TranscriptFeedDeps): TranscriptFeed {
  return async (room, t: CommittedTurn) => {
    if (!t.text.trim()) return;
    try {
      const scope: ScopeRef = { scope: 'room', owner: t.agentId, room: room.id };
      const key = `knowledge.extract:room:${room.id}:turn:${t.turn}`;
      const source = {
        kind: 'conversation' as const,
        title: `${room.topic.slice(0, 400)} (turn ${t.turn})`,
        messages: [{ id: `turn-${t.turn}`, speaker: t.agentName, text: t.text.slice(0, 32_000) }],
      };
      const sourceId = namedUuid(`${key}:source`);
      if (await deps.records.getSource(sourceId)) return;
      await deps.records.insertSource({
        id: sourceId,
        owner_id: room.owner_id,
        kind: 'conversation',
        title: source.title,
        scope: 'room',
        scope_owner: t.agentId,
        room: room.id,
        scope_key: scopeKey(scope),
        messages: 1,
      });
      const job = await submitJob({ jobs: deps.jobs }, knowledgeExtract, { sourceId, source, scope, llmPass: false }, { ownerId: room.owner_id, key });
      await deps.records.setJob(sourceId, job.id);
    } catch (err) {
      deps.log.warn({ err, room: room.id, turn: t.turn }, 'could not feed the turn to knowledge');
    }
  };
}
