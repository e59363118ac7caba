/**
 * The one place code intelligence and the vector store submit jobs
 * (`code.index`, `collection.upsert`, `vectors.maintain`), from the API and
 * from workers alike. It follows the platform's path for every job: the
 * record in Postgres first, then BullMQ with the record's id; a failed
 * enqueue removes the record, so nothing half-accepted remains, and the
 * sweeper's reconciliation covers a process that dies in between.
 *
 * This adapter exists so that the job lifecycle's own submit API can replace
 * its body without touching its callers.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createJobStore, enqueue, type Queues } from '../jobs/index.ts';
import type { Db } from '../connections/index.ts';
import type { InputOf, JobDefinition, PriorityClass } from '../../shared/index.ts';

export interface SubmitDeps {
  db: Db;
  queues: Queues;
  keyPrefix: string;
}

export interface SubmittedInternalJob {
  id: string;
  kind: string;
  /** False when the key named a job that already existed (nothing new was submitted). */
  created: boolean;
}

/** A UUID (version 8) from a name: the same name, the same id. */
function namedId(name: string): string {
  const b = createHash('sha256').update(name).digest();
  b[6] = (b[6]! & 0x0f) | 0x80;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * Records and enqueues a job of `def` for `ownerId`. With `key`, the job's
 * id derives from it and the record carries it as idempotency key, so
 * submitting the same key twice yields the one job.
 */
export async function submitJob<D extends JobDefinition>(
  deps: SubmitDeps,
  def: D,
  input: InputOf<D>,
  opts: { ownerId: string; key?: string; priority?: PriorityClass },
): Promise<SubmittedInternalJob> {
  const parsed = def.input.parse(input);
  const id = opts.key ? namedId(`${deps.keyPrefix}:${opts.key}`) : randomUUID();
  const priority = opts.priority ?? def.defaults.priority;
  const store = createJobStore(deps.db, { keyPrefix: deps.keyPrefix });
  const { row, created } = await store.insert({
    id, kind: def.kind, v: def.v, queue: def.queue, ownerId: opts.ownerId, priority, maxAttempts: def.defaults.attempts, input: parsed,
    ...(opts.key ? { idempotencyKey: opts.key } : {}),
  });
  if (!created) return { id: row.id, kind: row.kind, created: false };
  try {
    await enqueue(deps.queues, def, id, { kind: def.kind, v: def.v, input: parsed, ownerId: opts.ownerId, priority });
  } catch (err) {
    await store.remove(id).catch(() => {});
    throw err;
  }
  return { id, kind: def.kind, created: true };
}
