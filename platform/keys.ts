/**
 * Every Redis key the platform writes outside BullMQ, in one place.
 *
 * Redis Cluster: keys that one script or MULTI touches together share a hash
 * tag (the `{…}` part decides the slot). A room's stream, seq counter, memory
 * and pick usage carry `{<room id>}`; a job's stream, its fence hash
 * (`<stream>:w`, written by the same append script) and its cancel flag
 * (read by the claim script) carry `{<job id>}`; the
 * other keys here are used one at a time and need none. BullMQ's keys are tagged per queue (queues.ts
 * `bullPrefix`); budgets and the response cache tag their own keys (budgets.ts,
 * ollama/cache.ts).
 */
export function keys(prefix: string) {
  return {
    /** Redis Stream of a job's live events (see job-stream.ts for the entry format). */
    jobStream: (id: string) => `${prefix}:stream:job:{${id}}`,
    /** Set while a cancel is pending, so a worker that picks the job up later still sees it. */
    cancelFlag: (id: string) => `${prefix}:cancel:{${id}}`,
    /** Pub/sub channel carrying job ids to cancel, heard by every worker process. */
    cancelChannel: `${prefix}:cancel`,
    /** Lock held by the one worker process that runs the sweeper (aging + reconciliation). */
    sweeperLock: `${prefix}:lock:sweeper`,
    /** Redis Stream of a discussion room's live events (see room-stream.ts for the entry format). */
    roomStream: (id: string) => `${prefix}:stream:discussion:{${id}}`,
    /** The room's last allocated event seq (INCRBY inside the append script, with the stream: same slot). */
    roomSeq: (id: string) => `${prefix}:discussion:{${id}}:seq`,
    /** How many human messages the room took (bounded by PARLEY_ROOM_MAX_MESSAGES); expires with the stream. */
    roomMessageCount: (id: string) => `${prefix}:discussion:{${id}}:messages`,
    /** Short-term memory: a capped list of the room's most recent turns, newest first. */
    roomMemory: (id: string) => `${prefix}:discussion:{${id}}:recent`,
    /** What the moderator's pick for a turn consumed (JSON Usage), kept for the turn's retries; expires after a day. */
    roomPickUsage: (id: string, turn: number) => `${prefix}:discussion:{${id}}:pick-usage:${turn}`,
    /** Lock held by the one worker process that runs the discussion watchdog. */
    roomWatchdogLock: `${prefix}:lock:discussions`,
    /** Set (with a TTL of PARLEY_READYZ_DEEP_INTERVAL_S) while a deep readiness probe may not run again. */
    readyzDeepSlot: `${prefix}:readyz:deep`,
    /** Live event connections of one user (a sorted set of leases, api/realtime/connections.ts). */
    userConnections: (userId: string) => `${prefix}:conn:{${userId}}`,
    /** Fixed-window counters of the Socket.IO limiters (handshakes per IP, subscribes per user). */
    socketRate: (limiter: string, subject: string) => `${prefix}:rl:${limiter}:${subject}`,
    /** Lock held by the one API process that purges ended sessions and old failed sign-ins. */
    authRetentionLock: `${prefix}:lock:auth-retention`,
    /** Write lock of one vector table (platform/vectors/lock.ts states its protocol). */
    vectorTableLock: (table: string) => `${prefix}:lock:vectors:${table}`,
    /** Lock held by the one worker process that schedules vector maintenance. */
    vectorsMaintainLock: `${prefix}:lock:vectors-maintain`,
  };
}
export type Keys = ReturnType<typeof keys>;
