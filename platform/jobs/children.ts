/**
 * Child jobs: a job that fans out into jobs of its own and waits for them.
 *
 * A child is an ordinary job (its own record, attempts, stream, cancel and
 * retry), submitted with its parent named, so BullMQ keeps it among the
 * parent's dependencies and the queue dashboard shows the tree. The parent
 * stays active while its children run, holding its lock: the fencing, stall
 * and cancel rules of one job apply to it unchanged.
 *
 * Child n of a parent always has the same id, whichever attempt of the
 * parent submits it, so an attempt that takes over after a crash finds what
 * the earlier ones submitted (`earlier`), waits for those still running, and
 * numbers its own from there. A child's queue runs in its own worker slots:
 * a parent never holds the slot its child needs.
 */
import type { InputOf, JobDefinition, PriorityClass, QueueName } from '../../shared/index.ts';
import { isTerminal } from '../../shared/index.ts';
import { JobRefused, namedUuid, type JobLifecycle } from './lifecycle.ts';
import type { JobRow } from './store.ts';

export interface ParentRef {
  id: string;
  queue: QueueName;
  ownerId: string;
  priority: PriorityClass;
}

/** Child n of a parent: the same id from every attempt. */
export function childId(parentId: string, n: number): string {
  return namedUuid(`child:${parentId}:${n}`);
}

export interface ChildJobs {
  /** The parent's record as the child jobs need it (owner and priority class). */
  parent(id: string, queue: QueueName): Promise<ParentRef>;
  /** The children earlier attempts of the parent submitted, in order (child 0, 1, … up to the first gap). */
  earlier(parentId: string): Promise<JobRow[]>;
  /** Submits child n (idempotent: submitting n again answers the same job). */
  submit<D extends JobDefinition>(parent: ParentRef, n: number, def: D, input: InputOf<D>): Promise<string>;
  /** The records of these children as they stand. */
  states(ids: readonly string[]): Promise<JobRow[]>;
  /** Cancels the children not yet ended (a waiting one leaves its queue; a running one is signalled). */
  cancel(ids: readonly string[]): Promise<void>;
}

export function createChildJobs(lifecycle: Pick<JobLifecycle, 'accept' | 'get' | 'getMany' | 'cancel'>): ChildJobs {
  return {
    async parent(id: string, queue: QueueName): Promise<ParentRef> {
      const row = await lifecycle.get(id);
      if (!row) throw new Error(`job ${id} has no record`);
      return { id, queue, ownerId: row.owner_id, priority: row.priority };
    },

    async earlier(parentId: string): Promise<JobRow[]> {
      const out: JobRow[] = [];
      for (let from = 0; ; from += 64) {
        const ids = Array.from({ length: 64 }, (_, i) => childId(parentId, from + i));
        const byId = new Map((await lifecycle.getMany(ids)).map((r) => [r.id, r]));
        for (const id of ids) {
          const row = byId.get(id);
          if (!row) return out;
          out.push(row);
        }
      }
    },

    async submit<D extends JobDefinition>(parent: ParentRef, n: number, def: D, input: InputOf<D>): Promise<string> {
      const id = childId(parent.id, n);
      const { row } = await lifecycle.accept({
        def,
        input: def.input.parse(input),
        ownerId: parent.ownerId,
        priority: parent.priority,
        id,
        idempotencyKey: `child:${parent.id}:${n}`,
        parent: { id: parent.id, queue: parent.queue },
      });
      return row.id;
    },

    states: (ids) => lifecycle.getMany(ids),

    async cancel(ids: readonly string[]): Promise<void> {
      const rows = await lifecycle.getMany(ids);
      await Promise.all(
        rows
          .filter((r) => !isTerminal(r.state))
          .map((r) =>
            lifecycle.cancel(r.id, { waitMs: 0 }).catch((err: unknown) => {
              // Ended meanwhile: nothing to cancel.
              if (!(err instanceof JobRefused && err.code === 'INVALID_STATE')) throw err;
            }),
          ),
      );
    },
  };
}
