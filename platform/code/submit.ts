/**
 * The one place code intelligence and the vector store submit jobs
 * (`code.index`, `collection.upsert`, `vectors.maintain`), from the API and
 * from workers alike, through the job lifecycle (platform/jobs): the record
 * in Postgres, then the hand-off to the queue; a job the queue could not take
 * is not accepted (its record is removed).
 */
import { namedUuid, type JobLifecycle } from '../jobs/index.ts';
import type { InputOf, JobDefinition, PriorityClass } from '../../shared/index.ts';

export interface SubmitDeps {
  jobs: Pick<JobLifecycle, 'accept'>;
}

export interface SubmittedInternalJob {
  id: string;
  kind: string;
  /** False when the key named a job that already existed (nothing new was submitted). */
  created: boolean;
}

/**
 * Records and hands off a job of `def` for `ownerId`. With `key`, the job's
 * id derives from it and the record carries it as idempotency key, so
 * submitting the same key twice yields the one job. Without one, `id` names
 * the job (one a budget reservation was made for, say).
 */
export async function submitJob<D extends JobDefinition>(
  deps: SubmitDeps,
  def: D,
  input: InputOf<D>,
  opts: { ownerId: string; key?: string; id?: string; priority?: PriorityClass; requestId?: string },
): Promise<SubmittedInternalJob> {
  const parsed = def.input.parse(input);
  const { row, created } = await deps.jobs.accept({
    def,
    input: parsed,
    ownerId: opts.ownerId,
    priority: opts.priority ?? def.defaults.priority,
    ...(opts.key ? { id: namedUuid(opts.key), idempotencyKey: opts.key } : opts.id ? { id: opts.id } : {}),
    ...(opts.requestId ? { requestId: opts.requestId } : {}),
  });
  return { id: row.id, kind: row.kind, created };
}
