/**
 * Room transcripts as knowledge: each committed turn becomes a one-message
 * conversation source in the room's scope (platform/knowledge feed.ts; the
 * API feeds the room's human messages the same way). A turn retried after
 * its commit submits nothing new. Feeding is an aid, not part of the turn: a
 * failure is logged and the room goes on.
 */
import type { JobLifecycle } from '../../platform/jobs/index.ts';
import { feedTurn, type KnowledgeRecords } from '../../platform/knowledge/index.ts';
import type { Logger } from '../../platform/observability/index.ts';
import type { CommittedTurn, TranscriptFeed } from '../discussions/runtime.ts';

export interface TranscriptFeedDeps {
  records: KnowledgeRecords;
  jobs: Pick<JobLifecycle, 'accept'>;
  log: Logger;
}

export function transcriptFeed(deps: TranscriptFeedDeps): TranscriptFeed {
  return async (room, t: CommittedTurn) => {
    try {
      await feedTurn(deps, room, t);
    } catch (err) {
      deps.log.warn({ err, room: room.id, turn: t.turn }, 'could not feed the turn to knowledge');
    }
  };
}
