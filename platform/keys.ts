/** Every Redis key the platform writes outside BullMQ, in one place. */
export function keys(prefix: string) {
  return {
    /** Redis Stream of a job's live events (see job-stream.ts for the entry format). */
    jobStream: (id: string) => `${prefix}:stream:job:${id}`,
    /** Set while a cancel is pending, so a worker that picks the job up later still sees it. */
    cancelFlag: (id: string) => `${prefix}:cancel:${id}`,
    /** Pub/sub channel carrying job ids to cancel, heard by every worker process. */
    cancelChannel: `${prefix}:cancel`,
    /** Lock held by the one worker process that runs the sweeper (aging + reconciliation). */
    sweeperLock: `${prefix}:lock:sweeper`,
    /** Redis Stream of a discussion room's live events (see room-stream.ts for the entry format). */
    roomStream: (id: string) => `${prefix}:stream:discussion:${id}`,
    /** The room's last allocated event seq (INCRBY inside the append script). */
    roomSeq: (id: string) => `${prefix}:discussion:${id}:seq`,
    /** Short-term memory: a capped list of the room's most recent turns, newest first. */
    roomMemory: (id: string) => `${prefix}:discussion:${id}:recent`,
    /** What the moderator's pick for a turn consumed (JSON Usage), kept for the turn's retries; expires after a day. */
    roomPickUsage: (id: string, turn: number) => `${prefix}:discussion:${id}:pick-usage:${turn}`,
    /** Lock held by the one worker process that runs the discussion watchdog. */
    roomWatchdogLock: `${prefix}:lock:discussions`,
    /** Write lock of one vector table (platform/vectors/lock.ts states its protocol). */
    vectorTableLock: (table: string) => `${prefix}:lock:vectors:${table}`,
    /** Lock held by the one worker process that schedules vector maintenance. */
    vectorsMaintainLock: `${prefix}:lock:vectors-maintain`,
  };
}
export type Keys = ReturnType<typeof keys>;
