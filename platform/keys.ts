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
  };
}
export type Keys = ReturnType<typeof keys>;
