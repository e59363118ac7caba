/**
 * Live event streams in Redis: one stream per job and one per discussion
 * room, each with a strictly increasing seq, announced over pub/sub.
 */
export {
  CLOSED,
  finishedSeq,
  JobStreamWriter,
  jobStreamStateKey,
  parseLiveMessage,
  parseStreamEntry,
  readEvents,
  reopenJobStream,
  runStartSeq,
  streamBounds,
  SUPERSEDED,
} from './job-stream.ts';
export type { JobStreamOptions } from './job-stream.ts';
export type { StreamEvent } from './job-stream.ts';
export {
  RoomStreamWriter,
  appendRoomEvent,
  appendRoomEvents,
  expireRoomStream,
  lastKeptSeqOfTurn,
  readRoomMessages,
  roomStreamHead,
  turnStartedSeq,
} from './room-stream.ts';
export { StreamHub } from './hub.ts';
export type { StreamHubOptions } from './hub.ts';
