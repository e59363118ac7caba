/**
 * Child jobs: a job that fans out into jobs of its own and waits for them.
 *
 * A child is an ordinary job (its own record, attempts, stream, cancel and
 * retry), submitted with its parent named, so BullMQ keeps it among the
 * parent's dependencies and the queue dashboard shows the tree. The parent
 * stays active while its children run, holding its lock: the fencing, stall
 * and cancel rules of one job apply to it unchanged.
 *
 * A child's record names its parent (`jobs.parent_id`), so an attempt that
 * takes over after a crash finds what the earlier ones submitted (`earlier`)
 * and waits for those still running; a cancel or a failure of the parent
 * cancels them (the lifecycle's `finish` and `cancel`). A child kind is
 * cancelled and retried through its parent only. A child's queue runs in its
 * own worker slots: a parent never holds the slot its child needs.
 */
import { QueueName, type InputOf, type JobDefinition, type PriorityClass } from '../../shared/index.ts';
import type { JobLifecycle } from './lifecycle.ts';
import type { JobRow } from './store.ts';

export interface ParentRef {
  id: string;
  queue: QueueName;
  ownerId: string;
  priority: PriorityClass;
}

export interface ChildJobs {
  /** The parent's record as the child jobs need it (queue, owner and priority class). */
  parent(id: string): Promise<ParentRef>;
  /** The children the parent's earlier attempts submitted, in the order they were recorded. */
  earlier(parentId: string): Promise<JobRow[]>;
  /** Submits a child of the parent. */
  submit<D extends JobDefinition>(parent: ParentRef, def: D, input: InputOf<D>): Promise<string>;
  /** The records of these children as they stand. */
  states(ids: readonly string[]): Promise<JobRow[]>;
  /** Cancels the parent's children not yet ended (a waiting one leaves its queue; a running one is signalled). */
  cancel(parentId: string): Promise<void>;
}

export function createChildJobs(lifecycle: Pick<JobLifecycle, 'accept' | 'get' | 'getMany' | 'cancelChildren' | 'children'>): ChildJobs {
  return {
    async parent(id) {
      const row = await lifecycle.get(id);
      if (!row) throw new Error(`job ${id} has no record`);
      return { id, queue: QueueName.parse(row.queue), ownerId: row.owner_id, priority: row.priority };
    },

    earlier: (parentId) => lifecycle.children(parentId),

    async submit(parent, def, input) {
      const { row } = await lifecycle.accept({
        def,
        input: def.input.parse(input),
        ownerId: parent.ownerId,
        priority: parent.priority,
        parent: { id: parent.id, queue: parent.queue },
      });
      return row.id;
    },

    states: (ids) => lifecycle.getMany(ids),

    cancel: (parentId) => lifecycle.cancelChildren(parentId),
  };
}
