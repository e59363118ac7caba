/**
 * The discussion arena's data and transitions: rooms and agents (Postgres),
 * transcripts (MongoDB), short-term memory (Redis), turn scheduling.
 */
export {
  announceStatus,
  commitTurn,
  finishBeforeTurn,
  pauseForFailure,
  pauseRoom,
  release,
  rescheduleRoom,
  resumeRoom,
  roomTokens,
  startRoom,
  stopRoom,
  turnTokens,
} from './lifecycle.ts';
export type { RoomDeps, Transition } from './lifecycle.ts';
export { createRoomMemory } from './memory.ts';
export type { MemoryTurn, RoomMemory } from './memory.ts';
export { recordSummaryJob } from './schedule.ts';
export { createDiscussionStore, RosterAgentGone } from './store.ts';
export type { AgentRow, DiscussionRow, DiscussionStore, RoomMember, Roster, RosterRow } from './store.ts';
export { createTranscripts, toMessage, toSummary, toTurn } from './transcripts.ts';
export type { MessageDoc, Transcripts, TurnDoc } from './transcripts.ts';
