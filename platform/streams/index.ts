/**
 * Live event streams in Redis: one stream per job and one per discussion
 * room, each with a strictly increasing seq, announced over pub/sub.
 */
export { JobStreamWriter, parseLiveMessage, parseStreamEntry } from './job-stream.ts';
export type { StreamEvent } from './job-stream.ts';
export { RoomStreamWriter, appendRoomEvent, appendRoomEvents, expireRoomStream, readRoomMessages } from './room-stream.ts';
