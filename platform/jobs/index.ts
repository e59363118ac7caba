/**
 * The job lifecycle: the record in Postgres, the hand-off to BullMQ, terminal
 * writes, the cancel bus and failures as data. The only module outside the
 * worker runtime that talks to BullMQ.
 */
export { createJobLifecycle, JobRefused, namedUuid, streamSettings } from './lifecycle.ts';
export type { AcceptSpec, BudgetSettlement, JobLifecycle, LifecycleDeps, Outcome, RefusalCode, RetryAdmission, ScheduledJob } from './lifecycle.ts';
export { onCancel } from './cancel-bus.ts';
export { JobFailure, toJobError } from './failure.ts';
export { backoffDelay, bullPrefix, jobOptions, promoted } from './queues.ts';
export type { Queues } from './queues.ts';
export { SYSTEM_USER_ID } from './store.ts';
export type { Fence, FinishedJob, JobRow, JobStore, JobSummaryRow, OwnerCap } from './store.ts';
export { createChildJobs } from './children.ts';
export type { ChildJobs, ParentRef } from './children.ts';
