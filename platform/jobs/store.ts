/**
 * The job record in Postgres, the store behind the lifecycle (lifecycle.ts).
 * Every write is conditional on the current state, so at-least-once
 * execution records one outcome: the first terminal write wins and later
 * ones change nothing.
 *
 * Fencing: `markActive` starts attempt n by raising `attempts` to n. Every
 * later write made on behalf of an attempt (progress, requeue, usage, the
 * terminal write) carries that n and applies only while `attempts` is still
 * n, in the same statement. A worker stopped past its lock whose job another
 * attempt took over therefore changes nothing: its writes match no row.
 */
import type { JobError, JobState, PriorityClass, Usage } from '../../shared/index.ts';
import { microsecondInstant, type Db } from '../connections/index.ts';

export interface JobRow {
  id: string;
  kind: string;
  kind_version: number;
  queue: string;
  owner_id: string;
  priority: PriorityClass;
  state: JobState;
  attempts: number;
  max_attempts: number;
  input: unknown;
  progress: unknown;
  result: unknown;
  error_code: string | null;
  error_message: string | null;
  error_details: unknown;
  model: string | null;
  tokens_in: number | null;
  tokens_out: number | null;
  usage_estimated: boolean;
  idempotency_key: string | null;
  request_hash: string | null;
  queued_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  cancel_requested_at: Date | null;
  updated_at: Date;
  /** The Redis key prefix of the deployment whose queue holds the job. */
  key_prefix: string;
  /** The job that fanned out into this one (platform/jobs/children.ts). */
  parent_id: string | null;
}

/** A row as lists read it: no `input`, no `result`, only whether there is one. */
export type JobSummaryRow = Omit<JobRow, 'input' | 'result'> & { has_result: boolean };
/** `cursor_at`: `queued_at` to the microsecond, as Postgres keeps it (a JS Date stops at the millisecond). */
export type JobListRow = JobSummaryRow & { cursor_at: string };

const summaryColumns = [
  'id',
  'kind',
  'kind_version',
  'queue',
  'owner_id',
  'priority',
  'state',
  'attempts',
  'max_attempts',
  'progress',
  'error_code',
  'error_message',
  'error_details',
  'model',
  'tokens_in',
  'tokens_out',
  'usage_estimated',
  'idempotency_key',
  'request_hash',
  'queued_at',
  'started_at',
  'finished_at',
  'cancel_requested_at',
  'updated_at',
  'key_prefix',
  'parent_id',
] as const satisfies readonly (keyof JobRow)[];

export interface NewJob {
  id: string;
  kind: string;
  v: number;
  queue: string;
  ownerId: string;
  priority: PriorityClass;
  maxAttempts: number;
  input: unknown;
  idempotencyKey?: string;
  requestHash?: string;
  parentId?: string;
}

const terminal = ['completed', 'failed', 'cancelled'] as const;

/** A terminal write: the state, what it produced, and the last progress when the record does not have it yet. */
export interface TerminalOutcome {
  state: (typeof terminal)[number];
  result?: unknown;
  error?: JobError;
  usage?: Usage | null;
  progress?: unknown;
}

/** The built-in account that owns platform-internal jobs (created by the auth migration, which repeats the literal). */
export const SYSTEM_USER_ID = '00000000-0000-4000-8000-000000000000';

/** A job that has just become terminal, as recorded. */
export interface FinishedJob {
  id: string;
  kind: string;
  ownerId: string;
  state: (typeof terminal)[number];
  /** The job's usage over all its attempts, as recorded. */
  usage: Usage | null;
  /** The attempt the record says finished (0 if it never started). */
  attempt: number;
}

export interface JobStoreOptions {
  /**
   * The deployment's Redis key prefix, recorded on every job inserted and
   * used to scope the sweeper's queries to the jobs of its own queues.
   * @defaultValue 'parley' (the column default)
   */
  keyPrefix?: string;
}

/** Ollama's canonical model name in SQL, so "all-minilm" and "all-minilm:latest" add up in one usage row. */
const canonicalModel = `case when model is null then '' when model ~ ':[^/]*$' then model else model || ':latest' end`;

/** Which writes a terminal write must win against: an attempt's own (the attempt must still own the job), or any. */
export interface Fence {
  /** Applies only while `attempts` equals this (the writing attempt still owns the job). */
  attempt?: number;
  /** Applies only in this state (e.g. `queued`: nobody picked the job up meanwhile). */
  state?: 'queued' | 'active';
}

/** At most `limit` of an owner's jobs of these kinds queued or running at once. */
export interface OwnerCap {
  kinds: readonly string[];
  limit: number;
}

/**
 * The insert every job record goes through: the batch as columns (unnest), a row skipped when its
 * owner used its idempotency key before. `also` joins one more FROM item and a condition every row
 * must meet (the capped insert's count).
 */
/**
 * The multi-row insert. `on conflict do nothing` names no target on purpose: every unique index
 * arbitrates, the primary key included. A job submitted under a key has the id derived from it
 * (namedUuid), so two statements racing with one key collide on both indexes, and Postgres may
 * find the primary key's first; with only the key's index as arbiter that collision was an
 * error (a 500 for one of several index requests made at once) instead of a replay. A row that
 * was not inserted is resolved by `twin` (same owner and key) or reported.
 */
function insertStatement(batch: readonly NewJob[], keyPrefix: string, also?: { from: string; where: string; bindings: unknown[] }) {
  const col = <T>(f: (j: NewJob) => T) => batch.map(f);
  return {
    sql: `insert into jobs (id, kind, kind_version, queue, owner_id, priority, max_attempts, input, idempotency_key, request_hash, parent_id, key_prefix)
          select id, kind, v, queue, owner_id, priority, max_attempts, input, idempotency_key, request_hash, parent_id, ?
          from unnest(?::uuid[], ?::text[], ?::int[], ?::text[], ?::uuid[], ?::text[], ?::int[], ?::jsonb[], ?::text[], ?::text[], ?::uuid[])
            as t(id, kind, v, queue, owner_id, priority, max_attempts, input, idempotency_key, request_hash, parent_id)${also ? `, ${also.from} where ${also.where}` : ''}
          on conflict do nothing
          returning *`,
    bindings: [
      keyPrefix,
      col((j) => j.id),
      col((j) => j.kind),
      col((j) => j.v),
      col((j) => j.queue),
      col((j) => j.ownerId),
      col((j) => j.priority),
      col((j) => j.maxAttempts),
      col((j) => JSON.stringify(j.input)),
      col((j) => j.idempotencyKey ?? null),
      col((j) => j.requestHash ?? null),
      col((j) => j.parentId ?? null),
      ...(also?.bindings ?? []),
    ],
  };
}

export function createJobStore(db: Db, hooks: JobStoreOptions = {}) {
  const jobs = () => db<JobRow>('jobs');
  const keyPrefix = hooks.keyPrefix ?? 'parley';
  /** The record this owner made earlier under the job's idempotency key, if any. */
  const twin = async (j: NewJob): Promise<JobRow | undefined> =>
    j.idempotencyKey ? jobs().where({ owner_id: j.ownerId, idempotency_key: j.idempotencyKey }).first() : undefined;

  return {
    /** Inserts the record; with an idempotency key already used by this owner, returns the existing row instead. */
    async insert(job: NewJob): Promise<{ row: JobRow; created: boolean }> {
      return (await this.insertMany([job]))[0]!;
    },

    /**
     * `insert` for many jobs in one statement (group commit). One answer per input, in order;
     * a job whose idempotency key this owner already used (in an earlier statement or earlier in
     * this one) answers the existing record with `created: false`.
     */
    async insertMany(batch: readonly NewJob[]): Promise<{ row: JobRow; created: boolean }[]> {
      const ins = insertStatement(batch, keyPrefix);
      const { rows } = (await db.raw(ins.sql, ins.bindings as never)) as { rows: JobRow[] };
      const byId = new Map(rows.map((r) => [r.id, r]));
      return Promise.all(
        batch.map(async (j) => {
          const created = byId.get(j.id);
          // Two callers with one key in the same statement (same id): the row is the first one's; the other
          // is its replay, as it would be in a later statement.
          byId.delete(j.id);
          if (created) return { row: created, created: true };
          const existing = await twin(j);
          if (!existing) throw new Error(`job ${j.id} was not recorded: its id is taken by a record without this owner's idempotency key`);
          return { row: existing, created: false };
        }),
      );
    },

    /**
     * `insert` under the owner's concurrent-jobs cap, in one statement: the
     * owner's advisory lock, the count of their jobs of `cap.kinds` in flight
     * (on a snapshot taken after the lock; see the jobs_owner_in_flight
     * migration), and the insert only if that count is below `cap.limit`.
     * Refused: `{ refused: inFlight }`, and nothing was written.
     */
    async insertCapped(job: NewJob, cap: OwnerCap): Promise<{ row: JobRow; created: boolean } | { refused: number }> {
      const ins = insertStatement([job], keyPrefix, { from: 'n', where: 'n.parley_in_flight < ?', bindings: [cap.limit] });
      const { rows } = (await db.raw(
        `with n as materialized (select parley_owner_in_flight(?::uuid, ?::text[]) as parley_in_flight),
         ins as (${ins.sql})
         select n.parley_in_flight, ins.* from n left join ins on true`,
        [job.ownerId, cap.kinds, ...ins.bindings] as never,
      )) as { rows: (JobRow & { parley_in_flight: string })[] };
      const { parley_in_flight: n, ...row } = rows[0]!;
      if (row.id) return { row: row as JobRow, created: true };
      // Not inserted. A request with the same idempotency key that won (maybe taking the last slot) is
      // this one's replay, whatever the count says; without one, the cap refused it.
      const existing = await twin(job);
      if (existing) return { row: existing, created: false };
      if (Number(n) >= cap.limit) return { refused: Number(n) };
      throw new Error('a capped insert below the cap inserted nothing and found no idempotent twin');
    },

    /** The oldest queued or running job of a kind whose input has `field` = `value` (for deduplicated submits). */
    activeByInput(kind: string, field: string, value: string): Promise<Pick<JobRow, 'id' | 'state'> | undefined> {
      return jobs()
        .where({ kind })
        .whereIn('state', ['queued', 'active'])
        .whereRaw('input->>? = ?', [field, value])
        .orderBy('queued_at', 'asc')
        .first('id', 'state');
    },

    /** Seconds the oldest queued (not yet started) job of each queue has waited, for this deployment's queues. */
    oldestQueuedAges(): Promise<{ queue: string; age: number }[]> {
      return jobs()
        .select('queue')
        .select(db.raw('extract(epoch from now() - min(queued_at))::float8 as age'))
        .where({ state: 'queued', key_prefix: keyPrefix })
        .groupBy('queue') as unknown as Promise<{ queue: string; age: number }[]>;
    },

    /** A job's owner and the owner's current role. */
    ownerOf(id: string): Promise<{ id: string; role: string } | undefined> {
      return db('jobs').join('users', 'users.id', 'jobs.owner_id').where('jobs.id', id).first('users.id as id', 'users.role as role') as Promise<
        { id: string; role: string } | undefined
      >;
    },

    findByIdempotencyKey(ownerId: string, key: string): Promise<JobRow | undefined> {
      return jobs().where({ owner_id: ownerId, idempotency_key: key }).first();
    },

    /**
     * Deletes readiness-probe records: the system account's system.ping jobs whose idempotency key starts
     * `readyz-probe:` (api/domain/probe.ts). `ids` go whatever their state; other probes once they are
     * older than `olderThanMs` (left by a process that died mid-probe). Nothing else can match.
     */
    async discardProbes(ids: string[], olderThanMs: number): Promise<number> {
      return jobs()
        .where({ owner_id: SYSTEM_USER_ID, kind: 'system.ping' })
        .andWhere('idempotency_key', 'like', 'readyz-probe:%')
        .andWhere((q) => {
          if (ids.length) q.whereIn('id', ids);
          q.orWhere('queued_at', '<', db.raw(`now() - (? * interval '1 millisecond')`, [olderThanMs]));
        })
        .delete();
    },

    /** Deletes a record whose job never reached the queue (the submit failed). */
    async remove(id: string): Promise<void> {
      await jobs().where({ id, state: 'queued', attempts: 0 }).delete();
    },

    get(id: string): Promise<JobRow | undefined> {
      return jobs().where({ id }).first();
    },

    /** A job's children (platform/jobs/children.ts), in the order they were recorded. */
    childrenOf(parentId: string): Promise<JobRow[]> {
      return jobs()
        .where({ parent_id: parentId })
        .orderBy([{ column: 'queued_at' }, { column: 'id' }]);
    },

    /** The records of these ids that exist, in no particular order. */
    async getMany(ids: readonly string[]): Promise<JobRow[]> {
      return ids.length ? jobs().whereIn('id', [...ids]) : [];
    },

    /** Starts an attempt. Returns the attempt number, or undefined when the job is already terminal. */
    async markActive(id: string): Promise<{ attempt: number; cancelRequested: boolean } | undefined> {
      return (await this.markActiveMany([id]))[0];
    },

    /**
     * `markActive` for many jobs in one statement (group commit): one answer per id, in order
     * (undefined for a job already terminal).
     */
    async markActiveMany(ids: readonly string[]): Promise<({ attempt: number; cancelRequested: boolean } | undefined)[]> {
      const { rows } = (await db.raw(
        `update jobs j set state = 'active', attempts = j.attempts + 1, started_at = now(), updated_at = now()
         from unnest(?::uuid[]) with ordinality as u(id, n)
         where j.id = u.id and j.state not in ('completed', 'failed', 'cancelled')
         returning u.n, j.attempts, j.cancel_requested_at`,
        [[...ids]] as never,
      )) as { rows: { n: string | number; attempts: number; cancel_requested_at: Date | null }[] };
      const out: ({ attempt: number; cancelRequested: boolean } | undefined)[] = ids.map(() => undefined);
      for (const r of rows) out[Number(r.n) - 1] = { attempt: r.attempts, cancelRequested: r.cancel_requested_at !== null };
      return out;
    },

    /**
     * Tokens a job's owner consumed outside the job's own metered call (a discussion turn's
     * moderator, for one): added to `usage_daily` for the owner, model and UTC day, with no job
     * counted. The job's own row keeps its own call's usage; with `onJob` (a kind with no metered
     * call of its own, whose only model calls are these: knowledge extraction's LLM pass), the
     * row gets them too, so the job shows what it consumed.
     */
    async addUsage(ownerId: string, usage: Usage, fence: { jobId: string; attempt: number; onJob?: boolean }): Promise<boolean> {
      const r = (await db.raw(
        `with owned as (
           select id from jobs where id = ? and attempts = ? and state = 'active'
         ), stamped as (
           update jobs set model = coalesce(jobs.model, ?), tokens_in = coalesce(jobs.tokens_in, 0) + ?, tokens_out = coalesce(jobs.tokens_out, 0) + ?
           from owned where jobs.id = owned.id and ?::bool
           returning jobs.id
         )
         insert into usage_daily as u (user_id, model, day, prompt_tokens, completion_tokens, jobs, estimated_jobs)
         select ?, ${canonicalModel}, (now() at time zone 'UTC')::date, ?, ?, 0, 0
         from (select ?::text as model) m
         where exists (select 1 from owned)
         on conflict (user_id, model, day) do update set
           prompt_tokens = u.prompt_tokens + excluded.prompt_tokens,
           completion_tokens = u.completion_tokens + excluded.completion_tokens`,
        [
          fence.jobId,
          fence.attempt,
          usage.model || null,
          usage.promptTokens,
          usage.completionTokens,
          fence.onJob === true,
          ownerId,
          usage.promptTokens,
          usage.completionTokens,
          usage.model || null,
        ],
      )) as { rowCount: number | null };
      return (r.rowCount ?? 0) > 0;
    },

    /** Progress of attempt `attempt`; false when another attempt owns the job (or it is no longer active). */
    async setProgress(id: string, attempt: number, progress: unknown): Promise<boolean> {
      const n = await jobs()
        .where({ id, state: 'active', attempts: attempt })
        .update({ progress: JSON.stringify(progress) as never, updated_at: db.fn.now() as never });
      return n > 0;
    },

    /**
     * A retryable failure with attempts left (or a hand-back at shutdown): back to queued, keeping
     * the last error for the record. `usage`, what the failed attempt consumed, is added to the
     * job's tokens and to `usage_daily` at once, so tokens spent by attempts that did not finish
     * are counted too; the job itself is counted in `jobs` when it ends.
     */
    async requeue(id: string, attempt: number, error: JobError, usage?: Usage | null): Promise<boolean> {
      if (!usage) {
        const n = await jobs()
          .where({ id, attempts: attempt })
          .whereNotIn('state', terminal)
          .update({ state: 'queued', error_code: error.code, error_message: error.message, updated_at: db.fn.now() as never });
        return n > 0;
      }
      const r = (await db.raw(
        `with requeued as (
           update jobs set
             state = 'queued', error_code = ?, error_message = ?, updated_at = now(),
             model = coalesce(?, model), tokens_in = coalesce(tokens_in, 0) + ?, tokens_out = coalesce(tokens_out, 0) + ?,
             usage_estimated = usage_estimated or ?
           where id = ? and attempts = ? and state not in ('completed', 'failed', 'cancelled')
           returning owner_id, model
         ), counted as (
           insert into usage_daily as u (user_id, model, day, prompt_tokens, completion_tokens, jobs, estimated_jobs)
           select owner_id, ${canonicalModel}, (now() at time zone 'UTC')::date, ?, ?, 0, 0
           from requeued
           on conflict (user_id, model, day) do update set
             prompt_tokens = u.prompt_tokens + excluded.prompt_tokens,
             completion_tokens = u.completion_tokens + excluded.completion_tokens
         )
         select count(*)::int as n from requeued`,
        [
          error.code,
          error.message,
          usage.model || null,
          usage.promptTokens,
          usage.completionTokens,
          usage.estimated,
          id,
          attempt,
          usage.promptTokens,
          usage.completionTokens,
        ],
      )) as { rows: { n: number }[] };
      return (r.rows[0]?.n ?? 0) > 0;
    },

    /**
     * Terminal write. When this call made the job terminal: the job's usage over all its
     * attempts (what GET /v1/jobs/:id shows from now on); false when it already was terminal.
     *
     * One statement: the conditional update, and (only when it changed a row)
     * this attempt's tokens added to the job's (earlier attempts' usage is
     * already there, from `requeue`) and to `usage_daily` for its owner, model
     * (canonical name: `x` is `x:latest`) and UTC day.
     * A racing second terminal write updates nothing, so usage counts exactly once; with a
     * `fence`, neither does a write of an attempt that no longer owns the job.
     */
    async finish(id: string, outcome: TerminalOutcome, fence: Fence = {}): Promise<FinishedJob | false> {
      // One statement whichever way it comes: alone here, or grouped by the lifecycle's group commit.
      return (await this.finishMany([{ id, outcome, fence }]))[0]!;
    },

    /**
     * `finish` for many jobs in one statement (group commit), with the same guarantees row by row:
     * each applies only while its job is non-terminal (and its fence holds); usage_daily gets each
     * applied row's tokens once (rows of one owner, model and day summed before the upsert). One
     * answer per input, in order: the finished job, or false.
     */
    async finishMany(items: readonly { id: string; outcome: TerminalOutcome; fence?: Fence }[]): Promise<(FinishedJob | false)[]> {
      const col = <T>(f: (i: (typeof items)[number]) => T) => items.map(f);
      const json = (v: unknown) => (v === undefined ? null : JSON.stringify(v));
      const { rows } = (await db.raw(
        `with input as (
           select * from unnest(?::uuid[], ?::text[], ?::jsonb[], ?::text[], ?::text[], ?::jsonb[], ?::text[], ?::int[], ?::int[], ?::bool[], ?::int[], ?::text[], ?::jsonb[])
             with ordinality as t(id, state, result, error_code, error_message, error_details, model, p, c, est, fence_attempt, fence_state, progress, n)
         ), done as (
           update jobs set
             state = input.state, result = input.result, error_code = input.error_code, error_message = input.error_message, error_details = input.error_details,
             progress = coalesce(input.progress, jobs.progress),
             model = coalesce(input.model, jobs.model),
             tokens_in = case when input.p is null then jobs.tokens_in else coalesce(jobs.tokens_in, 0) + input.p end,
             tokens_out = case when input.c is null then jobs.tokens_out else coalesce(jobs.tokens_out, 0) + input.c end,
             usage_estimated = jobs.usage_estimated or coalesce(input.est, false), finished_at = now(), updated_at = now()
           from input
           where jobs.id = input.id and jobs.state not in ('completed', 'failed', 'cancelled')
             and (input.fence_attempt is null or jobs.attempts = input.fence_attempt)
             and (input.fence_state is null or jobs.state = input.fence_state)
           returning input.n, input.p, input.c, jobs.id, jobs.kind, jobs.owner_id, jobs.model, jobs.tokens_in, jobs.tokens_out, jobs.usage_estimated, jobs.finished_at, jobs.attempts
         ), counted as (
           insert into usage_daily as u (user_id, model, day, prompt_tokens, completion_tokens, jobs, estimated_jobs)
           select owner_id, ${canonicalModel}, (finished_at at time zone 'UTC')::date, sum(coalesce(p, 0)), sum(coalesce(c, 0)), count(*),
                  sum(case when usage_estimated then 1 else 0 end)
           from done
           where tokens_in is not null or tokens_out is not null
           group by 1, 2, 3
           on conflict (user_id, model, day) do update set
             prompt_tokens = u.prompt_tokens + excluded.prompt_tokens,
             completion_tokens = u.completion_tokens + excluded.completion_tokens,
             jobs = u.jobs + excluded.jobs,
             estimated_jobs = u.estimated_jobs + excluded.estimated_jobs
         )
         select n, id, kind, owner_id, model, tokens_in, tokens_out, usage_estimated, attempts from done`,
        [
          col((i) => i.id),
          col((i) => i.outcome.state),
          col((i) => json(i.outcome.result)),
          col((i) => i.outcome.error?.code ?? null),
          col((i) => i.outcome.error?.message ?? null),
          col((i) => json(i.outcome.error?.details)),
          col((i) => i.outcome.usage?.model || null),
          col((i) => i.outcome.usage?.promptTokens ?? null),
          col((i) => i.outcome.usage?.completionTokens ?? null),
          col((i) => i.outcome.usage?.estimated ?? false),
          col((i) => i.fence?.attempt ?? null),
          col((i) => i.fence?.state ?? null),
          col((i) => json(i.outcome.progress)),
        ] as never,
      )) as {
        rows: {
          n: string | number;
          id: string;
          kind: string;
          owner_id: string;
          model: string | null;
          tokens_in: number | null;
          tokens_out: number | null;
          usage_estimated: boolean;
          attempts: number;
        }[];
      };
      const out: (FinishedJob | false)[] = items.map(() => false);
      for (const row of rows) {
        const i = Number(row.n) - 1;
        const usage = items[i]!.outcome.usage ?? null;
        const total: Usage | null =
          row.tokens_in === null && row.tokens_out === null
            ? usage
            : {
                model: row.model ?? usage?.model ?? '',
                promptTokens: row.tokens_in ?? 0,
                completionTokens: row.tokens_out ?? 0,
                estimated: row.usage_estimated,
              };
        out[i] = { id: row.id, kind: row.kind, ownerId: row.owner_id, state: items[i]!.outcome.state, usage: total, attempt: row.attempts };
      }
      return out;
    },

    async requestCancel(id: string): Promise<void> {
      await jobs()
        .where({ id })
        .whereNotIn('state', terminal)
        .update({ cancel_requested_at: db.fn.now() as never, updated_at: db.fn.now() as never });
    },

    /**
     * The record of a job about to be retried, locked (`for update`) until the caller's transaction
     * ends; undefined when there is none or another transaction holds the lock (`skip locked`: a
     * racing retry of the same job is refused at once rather than queued behind this one). Call it
     * on a store over a transaction.
     */
    lockForRetry(id: string): Promise<JobRow | undefined> {
      return jobs().where({ id }).forUpdate().skipLocked().first();
    },

    /**
     * Failed or cancelled → queued again for a manual retry, at `priority`. With `cap`, under the
     * owner's concurrent-jobs cap in the same statement, as `insertCapped` (the owner's advisory lock,
     * then the count of their jobs of `cap.kinds` in flight, which does not include this one: it is
     * failed or cancelled until the statement re-queues it). Returns the row; `{ refused: inFlight }`
     * when the cap refused it (nothing written); undefined if the state did not allow it.
     */
    async reopen(id: string, opts: { priority: PriorityClass; ownerId: string; cap?: OwnerCap }): Promise<{ row: JobRow } | { refused: number } | undefined> {
      const update = `update jobs set state = 'queued', priority = ?, result = null, error_code = null, error_message = null,
            error_details = null, progress = null, tokens_in = null, tokens_out = null, usage_estimated = false, model = null,
            queued_at = now(), started_at = null, finished_at = null, cancel_requested_at = null, updated_at = now()`;
      if (!opts.cap) {
        const { rows } = (await db.raw(`${update} where id = ? and state in ('failed', 'cancelled') returning *`, [opts.priority, id])) as { rows: JobRow[] };
        return rows[0] && { row: rows[0] };
      }
      const { rows } = (await db.raw(
        `with n as materialized (select parley_owner_in_flight(?::uuid, ?::text[]) as parley_in_flight),
         upd as (${update} from n where jobs.id = ? and jobs.state in ('failed', 'cancelled') and n.parley_in_flight < ? returning jobs.*)
         select n.parley_in_flight, upd.* from n left join upd on true`,
        [opts.ownerId, opts.cap.kinds, opts.priority, id, opts.cap.limit] as never,
      )) as { rows: (JobRow & { parley_in_flight: string })[] };
      const { parley_in_flight: n, ...row } = rows[0]!;
      if (row.id) return { row: row as JobRow };
      if (Number(n) >= opts.cap.limit) return { refused: Number(n) };
      return undefined;
    },

    async setPriority(id: string, priority: PriorityClass): Promise<void> {
      await jobs()
        .where({ id, state: 'queued' })
        .update({ priority, updated_at: db.fn.now() as never });
    },

    /**
     * Queued jobs of one class that waited longer than `olderThanMs`, oldest first, leaving out the
     * jobs of owners whose role is one of `exceptRoles` (their role may not run a job a class higher).
     */
    agingCandidates(priority: PriorityClass, olderThanMs: number, limit: number, exceptRoles: readonly string[] = []): Promise<Pick<JobRow, 'id' | 'queue'>[]> {
      const q = db('jobs')
        .join('users', 'users.id', 'jobs.owner_id')
        .select('jobs.id', 'jobs.queue')
        .where({ 'jobs.state': 'queued', 'jobs.priority': priority, 'jobs.key_prefix': keyPrefix })
        .andWhere('jobs.updated_at', '<', db.raw(`now() - (? * interval '1 millisecond')`, [olderThanMs]))
        .orderBy('jobs.queued_at', 'asc')
        .limit(limit);
      if (exceptRoles.length) q.whereNotIn('users.role', [...exceptRoles]);
      return q as unknown as Promise<Pick<JobRow, 'id' | 'queue'>[]>;
    },

    /** Non-terminal jobs untouched for `olderThanMs`: candidates for reconciliation against the queue. */
    stale(olderThanMs: number, limit: number): Promise<JobRow[]> {
      return jobs()
        .where({ key_prefix: keyPrefix })
        .whereIn('state', ['queued', 'active'])
        .andWhere('updated_at', '<', db.raw(`now() - (? * interval '1 millisecond')`, [olderThanMs]))
        .orderBy('updated_at', 'asc')
        .limit(limit);
    },

    /**
     * A page of summaries: every column but `input` and `result` (which may be megabytes each), with
     * `has_result` in their place. Only `get` loads a result, one job at a time.
     */
    async list(filter: {
      ownerId?: string;
      kind?: string;
      state?: JobState;
      since?: string;
      until?: string;
      limit: number;
      cursor?: { queuedAt: string; id: string };
    }): Promise<JobListRow[]> {
      const q = db('jobs')
        .select([...summaryColumns])
        .select(db.raw('(result is not null) as has_result'))
        .select(db.raw(`${microsecondInstant('queued_at')} as cursor_at`));
      if (filter.ownerId !== undefined) q.where('owner_id', filter.ownerId);
      if (filter.kind) q.where('kind', filter.kind);
      if (filter.state) q.where('state', filter.state);
      if (filter.since) q.where('queued_at', '>=', filter.since);
      if (filter.until) q.where('queued_at', '<', filter.until);
      if (filter.cursor) q.whereRaw('(queued_at, id) < (?::timestamptz, ?::uuid)', [filter.cursor.queuedAt, filter.cursor.id]);
      return q
        .orderBy([
          { column: 'queued_at', order: 'desc' },
          { column: 'id', order: 'desc' },
        ])
        .limit(filter.limit) as unknown as Promise<JobListRow[]>;
    },
  };
}

export type JobStore = ReturnType<typeof createJobStore>;
