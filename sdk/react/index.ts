/**
 * React hooks over the SDK client: thin, each one a client call or stream
 * tied to a component's life. Every connection a hook opens is closed when
 * the component unmounts or its id changes.
 */
export { ParleyProvider, useParleyClient } from './provider.tsx';
export { useJob, useJobStream, useSubmitJob, type JobStreamState } from './jobs.ts';
export { useDiscussion, applyRoomEvent, emptyRoom, type RoomState, type TurnView, type MessageView, type TimelineEntry } from './discussion.ts';
export { useModels, useUsage } from './resources.ts';
export type { QueryState } from './query.ts';
