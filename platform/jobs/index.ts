/**
 * The job lifecycle: the record in Postgres, the hand-off to BullMQ, the
 * cancel bus and failures as data. The only module outside the worker runtime
 * that talks to BullMQ.
 */
export { clearCancel, isCancelRequested, onCancel, requestCancel } from './cancel-bus.ts';
export { JobFailure, toJobError } from './failure.ts';
export { backoffDelay, bullPriority, closeQueues, createQueues, enqueue, jobOptions, promoted } from './queues.ts';
export type { Queues } from './queues.ts';
export { SYSTEM_USER_ID, createJobStore } from './store.ts';
export type { FinishedJob, JobRow, JobStore } from './store.ts';
