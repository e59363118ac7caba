/**
 * Job use cases: submit, read, list, cancel, retry. Plain functions over
 * plain arguments; the routes in api/routes/jobs.ts call them.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Config } from '../../platform/config.ts';
import { requestCancel } from '../../platform/cancel-bus.ts';
import type { JobRow, JobStore } from '../../platform/job-store.ts';
import { JobStreamWriter } from '../../platform/job-stream.ts';
import type { Keys } from '../../platform/keys.ts';
import { enqueue, type Queues } from '../../platform/queues.ts';
import { isJobKind, isTerminal, jobs, type JobError, type JobList, type JobView, type ListJobsQuery, type PriorityClass, type SubmitJobBody, type SubmittedJob } from '../../shared/index.ts';
import { can, type Actor } from '../auth/permissions.ts';
import type { Audit } from '../auth/audit.ts';
import { AppError } from '../http/app-error.ts';
import { issuesToErrors } from '../http/validation.ts';

export interface JobDeps {
  config: Config;
  store: JobStore;
  queues: Queues;
  redis: Redis;
  keys: Keys;
  /**
   * Checks submit-time policy (caps, budgets) for a kind; throws AppError to refuse. `jobId` is the id the
   * job will have (a budget reservation is made under it). May return the input to record instead (with
   * defaults pinned, e.g. the role's num_predict bound).
   */
  admit?: (actor: Actor, kind: string, input: unknown, jobId: string) => Promise<{ input: unknown; confirm?: () => Promise<void> } | void>;
  /** Undoes what `admit` reserved for a job that was not accepted after all. */
  release?: (jobId: string) => Promise<void>;
  onSubmitted?: (kind: string, priority: PriorityClass) => void;
  /** Records cancels and retries of other users' jobs. */
  audit?: Audit;
}

export function links(id: string) {
  return { self: `/v1/jobs/${id}`, events: `/v1/jobs/${id}/events`, cancel: `/v1/jobs/${id}` };
}

export function toView(row: JobRow): JobView {
  const error: JobError | null = row.error_code ? { code: row.error_code as JobError['code'], message: row.error_message ?? '', ...(row.error_details ? { details: row.error_details } : {}) } : null;
  return {
    id: row.id,
    kind: row.kind,
    state: row.state,
    priority: row.priority,
    owner: row.owner_id,
    progress: row.progress ?? null,
    result: row.result ?? null,
    // A retry in progress keeps its last error for the record, but the view shows errors only once terminal.
    error: row.state === 'failed' || row.state === 'cancelled' ? error : null,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    timings: {
      queuedAt: row.queued_at.toISOString(),
      startedAt: row.started_at?.toISOString() ?? null,
      finishedAt: row.finished_at?.toISOString() ?? null,
    },
    usage: row.tokens_in === null && row.tokens_out === null ? null : { model: row.model ?? undefined, promptTokens: row.tokens_in ?? 0, completionTokens: row.tokens_out ?? 0, estimated: row.usage_estimated },
    links: links(row.id),
  };
}

function requestHash(kind: string, input: unknown, priority: PriorityClass): string {
  return createHash('sha256').update(canonicalJson({ kind, input, priority })).digest('hex');
}

/** JSON with sorted object keys, so equal bodies hash equally whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value as object)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

export async function submitJob(deps: JobDeps, args: { actor: Actor; body: SubmitJobBody; idempotencyKey?: string; requestId?: string }): Promise<{ job: SubmittedJob; replayed: boolean }> {
  const { body, actor } = args;
  const submittable = Object.values(jobs).filter((d) => !(d as { internal?: boolean }).internal).map((d) => d.kind);
  if (!isJobKind(body.kind)) {
    throw new AppError('VALIDATION_FAILED', { detail: `Unknown job kind "${body.kind}"`, errors: [{ path: 'kind', message: `must be one of ${submittable.join(', ')}` }] });
  }
  if ((jobs[body.kind] as { internal?: boolean }).internal) {
    throw new AppError('VALIDATION_FAILED', {
      detail: `"${body.kind}" is an internal job kind: the platform submits it itself`,
      errors: [{ path: 'kind', message: `internal kinds cannot be submitted; submittable kinds: ${submittable.join(', ')}` }],
    });
  }
  const def = jobs[body.kind];
  const parsed = def.input.safeParse(body.input);
  if (!parsed.success) throw new AppError('VALIDATION_FAILED', { detail: `The input of ${body.kind} is not valid`, errors: issuesToErrors(parsed.error, 'input', def.input) });
  if (args.idempotencyKey && body.idempotencyKey && args.idempotencyKey !== body.idempotencyKey) {
    throw new AppError('VALIDATION_FAILED', { errors: [{ path: 'idempotencyKey', message: 'differs from the Idempotency-Key header' }] });
  }
  const key = body.idempotencyKey ?? args.idempotencyKey;
  const priority = body.priority ?? def.defaults.priority;
  const hash = key ? requestHash(body.kind, parsed.data, priority) : undefined;

  if (key) {
    // A replay must not be re-admitted (it would double-reserve budget); look it up first.
    const existing = await deps.store.findByIdempotencyKey(actor.userId, key);
    if (existing) return replay(existing, hash!);
  }
  const id = randomUUID();
  const admitted = (await deps.admit?.(actor, body.kind, parsed.data, id)) ?? undefined;
  const input = admitted?.input ?? parsed.data;
  const inserted = await deps.store
    .insert({
      id, kind: def.kind, v: def.v, queue: def.queue, ownerId: actor.userId, priority,
      maxAttempts: def.defaults.attempts, input, idempotencyKey: key, requestHash: hash,
    })
    .catch(async (err: unknown) => {
      await deps.release?.(id).catch(() => {});
      throw err;
    });
  const { row, created } = inserted;
  if (!created) {
    // A concurrent request with the same key won the insert: this one was never accepted.
    await deps.release?.(id).catch(() => {});
    return replay(row, hash!);
  }
  if (admitted?.confirm) {
    try {
      await admitted.confirm();
    } catch (err) {
      // Refused after all (a racing submit took the last slot): nothing was enqueued, so nothing was accepted.
      await deps.store.remove(id).catch(() => {});
      await deps.release?.(id).catch(() => {});
      throw err;
    }
  }
  try {
    await enqueue(deps.queues, def, id, { kind: def.kind, v: def.v, input, ownerId: actor.userId, priority, requestId: args.requestId });
  } catch (cause) {
    // Not accepted: remove the record so the client's retry with the same key starts clean.
    await deps.store.remove(id).catch(() => {});
    await deps.release?.(id).catch(() => {});
    throw new AppError('SERVICE_UNAVAILABLE', { detail: 'The queue could not take the job; nothing was accepted. Retry later.', cause });
  }
  deps.onSubmitted?.(def.kind, priority);
  return { job: { id, kind: def.kind, state: 'queued', links: links(id) }, replayed: false };
}

function replay(row: JobRow, hash: string): { job: SubmittedJob; replayed: boolean } {
  if (row.request_hash !== hash) throw new AppError('IDEMPOTENCY_CONFLICT', { detail: 'This Idempotency-Key was used with a different request body' });
  return { job: { id: row.id, kind: row.kind, state: row.state, links: links(row.id) }, replayed: true };
}

/** The job if the actor may see it; otherwise JOB_NOT_FOUND, so existence does not leak. */
export async function visibleJob(deps: Pick<JobDeps, 'store'>, actor: Actor, id: string): Promise<JobRow> {
  const row = await deps.store.get(id);
  if (!row || (row.owner_id !== actor.userId && !can(actor, 'jobs:any'))) throw new AppError('JOB_NOT_FOUND');
  return row;
}

export async function getJob(deps: JobDeps, actor: Actor, id: string): Promise<JobView> {
  return toView(await visibleJob(deps, actor, id));
}

export async function listJobs(deps: JobDeps, actor: Actor, q: ListJobsQuery): Promise<JobList> {
  let cursor: { queuedAt: string; id: string } | undefined;
  if (q.cursor) {
    const [queuedAt, id] = Buffer.from(q.cursor, 'base64url').toString().split('|');
    if (!queuedAt || !id || Number.isNaN(Date.parse(queuedAt)) || !/^[0-9a-f-]{36}$/.test(id)) {
      throw new AppError('VALIDATION_FAILED', { errors: [{ path: 'query.cursor', message: 'not a cursor from this API' }] });
    }
    cursor = { queuedAt, id };
  }
  const rows = await deps.store.list({
    ownerId: can(actor, 'jobs:any') ? undefined : actor.userId,
    kind: q.kind, state: q.state, since: q.since, until: q.until, limit: q.limit + 1, cursor,
  });
  const page = rows.slice(0, q.limit);
  const last = page.at(-1);
  return {
    items: page.map(toView),
    nextCursor: rows.length > q.limit && last ? Buffer.from(`${last.queued_at.toISOString()}|${last.id}`).toString('base64url') : null,
  };
}

async function writeFinished(deps: JobDeps, row: JobRow, payload: Record<string, unknown>): Promise<void> {
  const writer = new JobStreamWriter(deps.redis, deps.keys.jobStream(row.id), row.attempts, deps.config.streams);
  await writer.init();
  await writer.finished(payload);
}

/**
 * Cancels a job. A waiting job is removed from its queue and recorded
 * cancelled at once. An active job is signalled on every worker process; the
 * one holding it aborts the handler (and the Ollama generation) and records
 * `cancelled` with the partial output and usage. Waits briefly for that.
 */
export async function cancelJob(deps: JobDeps, actor: Actor, id: string, opts: { waitMs?: number; meta?: { ip?: string; userAgent?: string } } = {}): Promise<JobView> {
  const row = await visibleJob(deps, actor, id);
  if (row.owner_id !== actor.userId) {
    await deps.audit?.({ action: 'job.cancel_other', outcome: isTerminal(row.state) ? 'failure' : 'success', actorId: actor.userId, actorName: actor.username, ip: opts.meta?.ip, userAgent: opts.meta?.userAgent, targetType: 'job', targetId: id, details: { owner: row.owner_id, state: row.state } });
  }
  if (isTerminal(row.state)) throw new AppError('INVALID_STATE', { detail: `The job is already ${row.state}` });
  const queue = deps.queues[row.queue as keyof Queues];
  const job = await queue.getJob(id);
  let removed = false;
  if (job) {
    const state = await job.getState();
    if (state === 'waiting' || state === 'prioritized' || state === 'delayed') {
      // remove() refuses a job that a worker locked meanwhile; then it is active and gets the signal below.
      removed = await job.remove().then(() => true, () => false);
    }
  } else if (row.state === 'queued') {
    removed = true;
  }
  if (removed) {
    const error: JobError = { code: 'CANCELLED', message: 'cancelled before it started' };
    const done = await deps.store.finish(id, { state: 'cancelled', error });
    if (done) await writeFinished(deps, row, { state: 'cancelled', error, usage: done.usage });
  } else {
    await deps.store.requestCancel(id);
    await requestCancel(deps.redis, deps.keys, id);
    const deadline = Date.now() + (opts.waitMs ?? 5000);
    while (Date.now() < deadline) {
      const now = await deps.store.get(id);
      if (now && isTerminal(now.state)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return toView((await deps.store.get(id))!);
}

/** Re-runs a failed or cancelled job under the same id; live listeners get a `reset`. */
export async function retryJob(deps: JobDeps, actor: Actor, id: string, meta: { ip?: string; userAgent?: string; requestId?: string } = {}): Promise<JobView> {
  const row = await visibleJob(deps, actor, id);
  if (row.owner_id !== actor.userId) {
    await deps.audit?.({ action: 'job.retry_other', outcome: row.state === 'failed' || row.state === 'cancelled' ? 'success' : 'failure', actorId: actor.userId, actorName: actor.username, ip: meta.ip, userAgent: meta.userAgent, targetType: 'job', targetId: id, details: { owner: row.owner_id, state: row.state } });
  }
  if (row.state !== 'failed' && row.state !== 'cancelled') throw new AppError('INVALID_STATE', { detail: `Only failed or cancelled jobs can be retried; this one is ${row.state}` });
  if (!isJobKind(row.kind)) throw new AppError('INVALID_STATE', { detail: `Job kind ${row.kind} is no longer served` });
  const def = jobs[row.kind];
  const queue = deps.queues[def.queue];
  const old = await queue.getJob(id);
  if (old) await old.remove().catch(() => {});
  const reopened = await deps.store.reopen(id);
  if (!reopened) throw new AppError('INVALID_STATE', { detail: 'The job changed state meanwhile' });
  try {
    await enqueue(deps.queues, def, id, { kind: def.kind, v: def.v, input: row.input, ownerId: row.owner_id, priority: row.priority, requestId: meta.requestId });
  } catch (cause) {
    await deps.store.finish(id, { state: 'failed', error: { code: 'INTERNAL', message: 'could not re-enqueue for retry' } });
    throw new AppError('SERVICE_UNAVAILABLE', { cause });
  }
  return toView(reopened);
}
