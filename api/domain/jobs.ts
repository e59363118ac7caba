/**
 * Job use cases: submit, read, list, cancel, retry. Plain functions over
 * plain arguments; the routes in api/routes/jobs.ts call them.
 */
import { createHash, randomUUID } from 'node:crypto';
import { JobRefused, type JobLifecycle, type JobRow, type JobSummaryRow } from '../../platform/jobs/index.ts';
import {
  isJobKind,
  isTerminal,
  jobs,
  type JobError,
  type JobList,
  type JobSummary,
  type JobView,
  type ListJobsQuery,
  type PriorityClass,
  type SubmitJobBody,
  type SubmittedJob,
} from '../../shared/index.ts';
import { can, type Actor } from '../auth/permissions.ts';
import type { Audit } from '../auth/audit.ts';
import { AppError } from './errors.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import { issuesToErrors } from './field-errors.ts';
import type { Admit } from './admission.ts';

export interface JobDeps {
  jobs: JobLifecycle;
  /**
   * Checks submit-time policy (priority class, input size, caps, budgets) for a kind, at submit and again
   * at retry; throws AppError to refuse (api/domain/admission.ts). Returns the input and priority to record
   * (defaults pinned, e.g. the role's num_predict bound), the concurrency cap the job's insert (or a retry's re-queue)
   * enforces, and whether it reserved budget under the job's id (`release` then undoes it if the job is refused after all).
   */
  admit?: Admit;
  /** Undoes what `admit` reserved for a job that was not accepted after all. */
  release?: (jobId: string) => Promise<void>;
  onSubmitted?: (kind: string, priority: PriorityClass) => void;
  /** Records cancels and retries of other users' jobs. */
  audit?: Audit;
  /** Who else may read (never cancel or retry) a job: see JobReaders. */
  readers?: JobReaders;
}

/**
 * Whether `actor`, who neither owns the job nor holds `jobs:any`, may still
 * read it because they may read what the job works on: a `code.index` job
 * is its repository's, and the repository view links it to every reader
 * (api/domain/code.ts `mayReadIndexJob`). Read only: cancel and retry stay
 * the owner's and `jobs:any`'s. Wired in api/main.ts.
 */
export type JobReaders = (actor: Actor, row: JobRow) => Promise<boolean>;

export function links(id: string) {
  return { self: `/v1/jobs/${id}`, events: `/v1/jobs/${id}/events`, cancel: `/v1/jobs/${id}` };
}

export function toView(row: JobRow): JobView {
  const { hasResult: _h, ...summary } = toSummary({ ...row, has_result: row.result !== null && row.result !== undefined });
  return { ...summary, result: row.result ?? null };
}

/** What a list shows of a job: everything but the result. */
export function toSummary(row: JobSummaryRow): JobSummary {
  const error: JobError | null = row.error_code
    ? { code: row.error_code as JobError['code'], message: row.error_message ?? '', ...(row.error_details ? { details: row.error_details } : {}) }
    : null;
  return {
    id: row.id,
    kind: row.kind,
    state: row.state,
    priority: row.priority,
    owner: row.owner_id,
    parentId: row.parent_id ?? null,
    progress: row.progress ?? null,
    hasResult: row.has_result,
    // A retry in progress keeps its last error for the record, but the view shows errors only once terminal.
    error: row.state === 'failed' || row.state === 'cancelled' ? error : null,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    timings: {
      queuedAt: row.queued_at.toISOString(),
      startedAt: row.started_at?.toISOString() ?? null,
      finishedAt: row.finished_at?.toISOString() ?? null,
    },
    usage:
      row.tokens_in === null && row.tokens_out === null
        ? null
        : { model: row.model ?? undefined, promptTokens: row.tokens_in ?? 0, completionTokens: row.tokens_out ?? 0, estimated: row.usage_estimated },
    links: links(row.id),
  };
}

function requestHash(kind: string, input: unknown, priority: PriorityClass): string {
  return createHash('sha256').update(canonicalJson({ kind, input, priority })).digest('hex');
}

/**
 * The weak ETag of a job's answer: a digest of the whole view, so it changes whenever anything the
 * body shows does (progress, priority, usage, error, result as well as state and timings).
 */
export function jobETag(view: JobView): string {
  return `W/"${createHash('sha256').update(canonicalJson(view)).digest('base64url').slice(0, 32)}"`;
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

export async function submitJob(
  deps: JobDeps,
  args: { actor: Actor; body: SubmitJobBody; idempotencyKey?: string; requestId?: string },
): Promise<{ job: SubmittedJob; replayed: boolean }> {
  const { body, actor } = args;
  const submittable = Object.values(jobs)
    .filter((d) => !(d as { internal?: boolean }).internal)
    .map((d) => d.kind);
  if (!isJobKind(body.kind)) {
    throw new AppError('VALIDATION_FAILED', {
      detail: `Unknown job kind "${body.kind}"`,
      errors: [{ path: 'kind', message: `must be one of ${submittable.join(', ')}` }],
    });
  }
  if ((jobs[body.kind] as { internal?: boolean }).internal) {
    throw new AppError('VALIDATION_FAILED', {
      detail: `"${body.kind}" is an internal job kind: the platform submits it itself`,
      errors: [{ path: 'kind', message: `internal kinds cannot be submitted; submittable kinds: ${submittable.join(', ')}` }],
    });
  }
  const def = jobs[body.kind];
  const parsed = def.input.safeParse(body.input);
  if (!parsed.success)
    throw new AppError('VALIDATION_FAILED', {
      detail: `The input of ${body.kind} is not valid`,
      errors: issuesToErrors(parsed.error, 'input', def.input, body.input),
    });
  if (args.idempotencyKey && body.idempotencyKey && args.idempotencyKey !== body.idempotencyKey) {
    throw new AppError('VALIDATION_FAILED', { errors: [{ path: 'idempotencyKey', message: 'differs from the Idempotency-Key header' }] });
  }
  const key = body.idempotencyKey ?? args.idempotencyKey;
  // The hash covers the request as asked; the class recorded is what admission allows the role.
  const hash = key ? requestHash(body.kind, parsed.data, body.priority ?? def.defaults.priority) : undefined;

  if (key) {
    // A replay must not be re-admitted (it would double-reserve budget); look it up first.
    const existing = await deps.jobs.findByIdempotencyKey(actor.userId, key);
    if (existing) return replay(existing, hash!);
  }
  const id = randomUUID();
  const admitted = await deps.admit?.({ subject: actor, kind: body.kind, input: parsed.data, jobId: id, priority: body.priority });
  const input = admitted?.input ?? parsed.data;
  const priority = admitted?.priority ?? body.priority ?? def.defaults.priority;
  let accepted: { row: JobRow; created: boolean };
  try {
    accepted = await deps.jobs.accept({
      id,
      def,
      input,
      ownerId: actor.userId,
      priority,
      idempotencyKey: key,
      requestHash: hash,
      cap: admitted?.cap,
      requestId: args.requestId,
    });
  } catch (err) {
    // Not accepted (the insert failed or found the owner at the cap, or the hand-off failed): undo the reservation.
    await deps.release?.(id).catch(() => {});
    throw refusal(err, 'The queue could not take the job; nothing was accepted. Retry later.');
  }
  const { row, created } = accepted;
  if (!created) {
    // A concurrent request with the same key won the insert: this one was never accepted.
    await deps.release?.(id).catch(() => {});
    return replay(row, hash!);
  }
  deps.onSubmitted?.(def.kind, priority);
  return { job: { id, kind: def.kind, state: 'queued', links: links(id) }, replayed: false };
}

/** The lifecycle's refusals as API errors; anything else passes through. */
export function refusal(err: unknown, notAccepted: string): unknown {
  if (!(err instanceof JobRefused)) return err;
  switch (err.code) {
    case 'NOT_ACCEPTED':
      return new AppError('SERVICE_UNAVAILABLE', { detail: notAccepted, cause: err });
    case 'INVALID_STATE':
    case 'UNKNOWN_KIND':
      return new AppError('INVALID_STATE', { detail: err.message.charAt(0).toUpperCase() + err.message.slice(1), cause: err });
  }
}

function replay(row: JobRow, hash: string): { job: SubmittedJob; replayed: boolean } {
  if (row.request_hash !== hash) throw new AppError('IDEMPOTENCY_CONFLICT', { detail: 'This Idempotency-Key was used with a different request body' });
  return { job: { id: row.id, kind: row.kind, state: row.state, links: links(row.id) }, replayed: true };
}

/** Whether the actor may change (cancel, retry) the job: its owner, or `jobs:any`. */
const mayChange = (actor: Actor, row: JobRow) => row.owner_id === actor.userId || can(actor, 'jobs:any');

/**
 * The job if the actor may read it (its owner, `jobs:any`, or one of `deps.readers`); otherwise
 * JOB_NOT_FOUND, so existence does not leak.
 */
export async function visibleJob(deps: Pick<JobDeps, 'jobs' | 'readers'>, actor: Actor, id: string): Promise<JobRow> {
  const row = await deps.jobs.get(id);
  if (!row || !(mayChange(actor, row) || (await deps.readers?.(actor, row)))) throw new AppError('JOB_NOT_FOUND');
  return row;
}

/** The job if the actor may change it; FORBIDDEN to one who may only read it, JOB_NOT_FOUND to anyone else. */
async function changeableJob(deps: Pick<JobDeps, 'jobs' | 'readers'>, actor: Actor, id: string, verb: 'cancel' | 'retry'): Promise<JobRow> {
  const row = await visibleJob(deps, actor, id);
  if (!mayChange(actor, row)) throw new AppError('FORBIDDEN', { detail: `You may read this job, but only its owner (or an operator) may ${verb} it` });
  return row;
}

export async function getJob(deps: JobDeps, actor: Actor, id: string): Promise<JobView> {
  return toView(await visibleJob(deps, actor, id));
}

export async function listJobs(deps: JobDeps, actor: Actor, q: ListJobsQuery): Promise<JobList> {
  let cursor: { queuedAt: string; id: string } | undefined;
  if (q.cursor) {
    const c = decodeCursor(q.cursor);
    cursor = { queuedAt: c.at, id: c.id };
  }
  const rows = await deps.jobs.list({
    ownerId: can(actor, 'jobs:any') ? undefined : actor.userId,
    kind: q.kind,
    state: q.state,
    since: q.since,
    until: q.until,
    limit: q.limit + 1,
    cursor,
  });
  const page = rows.slice(0, q.limit);
  const last = page.at(-1);
  return {
    items: page.map(toSummary),
    nextCursor: rows.length > q.limit && last ? encodeCursor(last.cursor_at, last.id) : null,
  };
}

/**
 * Cancels a job (see the lifecycle's `cancel`): a waiting job is recorded
 * cancelled at once; an active one is aborted wherever it runs, and this
 * waits for its `finished` event (up to `waitMs`) so the answer usually
 * carries the final state and the partial output.
 */
/** A child job (a code.index job's batch) is its parent's: it is cancelled and retried through the parent only. */
function refuseChild(row: JobRow, verb: 'cancelled' | 'retried'): void {
  if (row.parent_id && isJobKind(row.kind) && jobs[row.kind].childOf)
    throw new AppError('INVALID_STATE', {
      detail: `A ${row.kind} job is part of its parent job ${row.parent_id} and is ${verb} with it: ${verb === 'cancelled' ? `DELETE /v1/jobs/${row.parent_id}` : `POST /v1/jobs/${row.parent_id}/retry`}`,
      extra: { parentId: row.parent_id },
    });
}

export async function cancelJob(
  deps: JobDeps,
  actor: Actor,
  id: string,
  opts: { waitMs?: number; meta?: { ip?: string; userAgent?: string } } = {},
): Promise<JobView> {
  const row = await changeableJob(deps, actor, id, 'cancel');
  if (row.owner_id !== actor.userId) {
    await deps.audit?.({
      action: 'job.cancel_other',
      outcome: isTerminal(row.state) ? 'failure' : 'success',
      actorId: actor.userId,
      actorName: actor.username,
      ip: opts.meta?.ip,
      userAgent: opts.meta?.userAgent,
      targetType: 'job',
      targetId: id,
      details: { owner: row.owner_id, state: row.state },
    });
  }
  refuseChild(row, 'cancelled');
  if (isTerminal(row.state)) throw new AppError('INVALID_STATE', { detail: `The job is already ${row.state}` });
  try {
    return toView(await deps.jobs.cancel(id, { waitMs: opts.waitMs }));
  } catch (err) {
    throw refusal(err, 'The job could not be cancelled; retry');
  }
}

/** Re-runs a failed or cancelled job under the same id; live listeners get a `reset`. */
export async function retryJob(deps: JobDeps, actor: Actor, id: string, meta: { ip?: string; userAgent?: string; requestId?: string } = {}): Promise<JobView> {
  const row = await changeableJob(deps, actor, id, 'retry');
  if (row.owner_id !== actor.userId) {
    await deps.audit?.({
      action: 'job.retry_other',
      outcome: row.state === 'failed' || row.state === 'cancelled' ? 'success' : 'failure',
      actorId: actor.userId,
      actorName: actor.username,
      ip: meta.ip,
      userAgent: meta.userAgent,
      targetType: 'job',
      targetId: id,
      details: { owner: row.owner_id, state: row.state },
    });
  }
  refuseChild(row, 'retried');
  if (isJobKind(row.kind) && (jobs[row.kind] as { clientRetry?: false }).clientRetry === false)
    throw new AppError('INVALID_STATE', {
      detail: `A ${row.kind} job is internal and run only when its discussion schedules it: it cannot be retried (resume or fork the discussion instead)`,
      extra: { kind: row.kind },
    });
  if (row.state !== 'failed' && row.state !== 'cancelled')
    throw new AppError('INVALID_STATE', { detail: `Only failed or cancelled jobs can be retried; this one is ${row.state}` });
  // Admission again, for the owner (whose caps and budget the job spends), as at submit: a retry is a new run. It runs
  // under the record's row lock (a racing retry of the same job is refused before it admits), and the re-queue counts
  // against the owner's concurrent-jobs cap. Refused after admission, it releases only a reservation it made itself.
  const owner = deps.admit ? await deps.jobs.ownerOf(id) : undefined;
  const admit =
    owner && deps.admit
      ? async (locked: JobRow) => {
          const a = await deps.admit!({
            subject: { userId: owner.id, role: owner.role as Actor['role'] },
            kind: locked.kind,
            input: locked.input,
            jobId: id,
            priority: locked.priority,
            retry: true,
          });
          return { priority: a.priority, cap: a.cap, undo: a.reserved && deps.release ? () => deps.release!(id) : undefined };
        }
      : undefined;
  try {
    return toView(await deps.jobs.retry(id, { requestId: meta.requestId, admit }));
  } catch (err) {
    throw refusal(err, 'The queue could not take the retry; retry later.');
  }
}
