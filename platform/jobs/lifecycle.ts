/**
 * The job lifecycle, in one place: a job exists once its record is in
 * Postgres; it reaches a worker through BullMQ; it ends with exactly one
 * terminal write, after which its budget settles and its stream gets the one
 * `finished` event. Every process builds one lifecycle in its composition
 * root; the API's domain functions, the discussion scheduler, the worker
 * runtime and the sweeper all go through it, and nothing else writes the
 * `jobs` table or talks to BullMQ (the worker runtime's own BullMQ Worker
 * aside).
 *
 *   accept ──▶ record (insert) ─▶ hand-off (BullMQ add) ──▶ worker: start (attempt n)
 *     │ refused: record removed,                              │ fenced writes: progress,
 *     │ reservation released                                  │ usage, requeue
 *     ▼                                                       ▼
 *   finish: one conditional terminal write ─▶ settle budget ─▶ `finished` on the stream
 *
 * Scheduled work (a discussion's next turn) is recorded inside the caller's
 * transaction with `record` and handed off after the commit with `handOff`;
 * if the process dies in between, the sweeper's reconciliation hands it off.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Knex } from 'knex';
import {
  isJobKind,
  isTerminal,
  jobs,
  PriorityClass,
  type JobDefinition,
  type JobEnvelope,
  type JobError,
  type QueueName,
  type Usage,
} from '../../shared/index.ts';
import { GroupCommit, type Db } from '../connections/index.ts';
import type { Keys } from '../keys.ts';
import type { Logger } from '../observability/index.ts';
import { finishedSeq, JobStreamWriter, reopenJobStream, type StreamHub } from '../streams/index.ts';
import { clearCancel, requestCancel } from './cancel-bus.ts';
import { bullPriority, closeQueues, createQueues, jobOptions, promoted, type Queues } from './queues.ts';
import { createJobStore, type FinishedJob, type Fence, type JobRow, type NewJob, type OwnerCap } from './store.ts';

/** Why the lifecycle refused an operation; the API maps each to its HTTP answer. */
export type RefusalCode = 'NOT_ACCEPTED' | 'INVALID_STATE' | 'UNKNOWN_KIND';

export class JobRefused extends Error {
  constructor(
    readonly code: RefusalCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'JobRefused';
  }
}

/** Settles a metered (or reserving) job's token budget once it is terminal, and counts what it consumed on the side. */
export interface BudgetSettlement {
  settle(args: { jobId: string; ownerId: string; tokens: number }): Promise<void>;
  release(jobId: string): Promise<void>;
  consume(args: { jobId: string; ownerId: string; tokens: number }): Promise<void>;
}

export interface LifecycleDeps {
  db: Db;
  redis: Redis;
  keys: Keys;
  /** The deployment's Redis key prefix, recorded on every job. */
  keyPrefix: string;
  streams: {
    maxLen: number;
    /** Expiry of a running job's stream (refreshed by writes). */
    ttlSeconds: number;
    /** Retention of a job's stream after `finished`, per kind; the kind's default applies to kinds left out. */
    retainAfterFinishS: (kind: string) => number;
  };
  /** Budget settlement at the terminal write of metered kinds; absent, budgets are not tracked. */
  budgets?: BudgetSettlement;
  /** The process's stream relay, to wait for a job's `finished` (cancel); absent, cancel does not wait. */
  hub?: StreamHub;
  log: Logger;
  /** Chaos testing: called at named points (`accept.after-record`); the composition root decides what happens there. */
  failpoint?: (name: string) => void;
}

export interface AcceptSpec {
  def: JobDefinition;
  input: unknown;
  ownerId: string;
  priority: PriorityClass;
  /** @defaultValue a random UUID */
  id?: string;
  /** @defaultValue the kind's default attempts */
  maxAttempts?: number;
  idempotencyKey?: string;
  requestHash?: string;
  /**
   * The owner's concurrent-jobs cap, checked in the insert's own statement
   * (store.insertCapped); over it, nothing is recorded and `refuse(inFlight)`
   * is thrown.
   */
  cap?: OwnerCap & { refuse: (inFlight: number) => Error };
  /** The submitting request's id: it travels in the envelope into the worker's log lines for the job. */
  requestId?: string;
  /**
   * The job this one is a child of (platform/jobs/children.ts): BullMQ records it as the parent's
   * dependency, so the queue dashboard shows the tree. The parent's queue must share its slot tag.
   */
  parent?: { id: string; queue: QueueName };
}

/** What a retry's admission decided (see JobLifecycle retry). */
export interface RetryAdmission {
  /** The class to run at. @defaultValue the recorded one */
  priority?: PriorityClass;
  /** The owner's concurrent-jobs cap, enforced by the re-queue's own statement. */
  cap?: OwnerCap & { refuse: (inFlight: number) => Error };
  /** Undoes what the admission did (its budget reservation) when the retry is refused after it. */
  undo?: () => Promise<void>;
}

export interface ScheduledJob {
  id: string;
  def: JobDefinition;
  envelope: JobEnvelope;
  /** False when the same job had been recorded before (nothing new was inserted). */
  created: boolean;
}

export interface Outcome {
  state: 'completed' | 'failed' | 'cancelled';
  result?: unknown;
  error?: JobError;
  usage?: Usage | null;
  /** The last progress, when the record's throttled progress writes skipped it: stored with the terminal write. */
  progress?: unknown;
}

/** Stream settings for the lifecycle from the config's `streams`: retention after the end by kind, then the kind's default, then the global one. */
export function streamSettings(c: {
  maxLen: number;
  ttlSeconds: number;
  retainAfterFinishS: number;
  retainByKind: Record<string, number>;
}): LifecycleDeps['streams'] {
  return {
    maxLen: c.maxLen,
    ttlSeconds: c.ttlSeconds,
    retainAfterFinishS: (kind) => c.retainByKind[kind] ?? (isJobKind(kind) ? jobs[kind].defaults.streamRetentionS : undefined) ?? c.retainAfterFinishS,
  };
}

/** A UUID (version 8, RFC 9562 custom) from a name: the same name, the same id. */
export function namedUuid(name: string): string {
  const b = createHash('sha256').update(name).digest();
  b[6] = (b[6]! & 0x0f) | 0x80;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export function createJobLifecycle(deps: LifecycleDeps) {
  const { db, redis, keys, keyPrefix, log } = deps;
  const store = createJobStore(db, { keyPrefix });
  const queues = createQueues(redis, keyPrefix);
  // Group commit: under load many jobs' starts (and terminal writes) share one statement and one commit.
  const inserts = new GroupCommit((batch: NewJob[]) => store.insertMany(batch));
  const starts = new GroupCommit((ids: string[]) => store.markActiveMany(ids));
  const finishes = new GroupCommit((items: { id: string; outcome: Outcome; fence: Fence }[]) => store.finishMany(items));

  const envelopeOf = (def: JobDefinition, input: unknown, ownerId: string, priority: PriorityClass, requestId?: string): JobEnvelope => ({
    kind: def.kind,
    v: def.v,
    input,
    ownerId,
    priority,
    ...(requestId ? { requestId } : {}),
  });

  async function enqueue(def: JobDefinition, id: string, envelope: JobEnvelope, maxAttempts?: number, parent?: AcceptSpec['parent']): Promise<void> {
    const opts = jobOptions(
      maxAttempts && maxAttempts !== def.defaults.attempts ? { ...def, defaults: { ...def.defaults, attempts: maxAttempts } } : def,
      id,
      envelope.priority,
    );
    if (parent) {
      opts.parent = { id: parent.id, queue: queues[parent.queue].qualifiedName };
      // The parent decides what a failed child means (from the records): BullMQ must not hold the parent for it.
      opts.ignoreDependencyOnFailure = true;
    }
    await queues[def.queue].add(def.kind, envelope, opts);
  }

  /** A writer for one attempt of a job's stream, with the kind's retention. */
  function stream(id: string, kind: string, attempt: number, onSuperseded?: () => void): JobStreamWriter {
    return new JobStreamWriter(redis, keys.jobStream(id), attempt, {
      maxLen: deps.streams.maxLen,
      ttlSeconds: deps.streams.ttlSeconds,
      retainAfterFinishS: deps.streams.retainAfterFinishS(kind),
      onSuperseded,
    });
  }

  /**
   * The terminal write and what follows it. Only the write that made the job
   * terminal (and, with a fence, only while its attempt still owns the job)
   * settles the budget and writes `finished`; any other returns false and
   * changes nothing.
   */
  async function finish(id: string, outcome: Outcome, fence: Fence & { writer?: JobStreamWriter } = {}): Promise<FinishedJob | false> {
    const done = await finishes.run({ id, outcome, fence: { attempt: fence.attempt, state: fence.state } });
    if (!done) return false;
    // Settlement sits here, with the terminal write that guarantees it runs once per run of the job.
    if (deps.budgets && isJobKind(done.kind) && (jobs[done.kind].metered || jobs[done.kind].reserves)) {
      // A kind with no metered call of its own (knowledge.extract) has only tokens consumed beside it, which
      // its row shows but which the reservation already counts (`c`): its own call used none.
      const tokens = jobs[done.kind].metered ? (done.usage?.promptTokens ?? 0) + (done.usage?.completionTokens ?? 0) : 0;
      await deps.budgets
        .settle({ jobId: id, ownerId: done.ownerId, tokens })
        .catch((err: unknown) => log.error({ err, jobId: id, tokens }, 'budget settle failed; the reservation stays charged until the period ends'));
    }
    const writer = fence.writer ?? stream(id, done.kind, done.attempt);
    if (!fence.writer) await writer.init();
    const payload = {
      state: outcome.state,
      ...(outcome.result !== undefined && outcome.state !== 'failed' ? { result: outcome.result } : {}),
      ...(outcome.error ? { error: outcome.error } : {}),
      usage: done.usage,
    };
    if (!(await writer.finished(payload)) && !writer.superseded)
      log.warn({ jobId: id, err: writer.lastError }, 'the finished event could not be written; readers fall back to the record');
    // A parent that ends without completing takes its children with it, however it ended (cancelled
    // before its handler ran, failed, recorded by reconciliation): none runs on for nothing.
    if (outcome.state !== 'completed' && isJobKind(done.kind) && jobs[done.kind].fansOut)
      await cancelChildren(id).catch((err: unknown) => log.warn({ err, jobId: id }, 'could not cancel the children of an ended job'));
    return done;
  }

  /** Cancels a job's children not yet ended: a waiting one leaves its queue, a running one is signalled. */
  async function cancelChildren(parentId: string): Promise<void> {
    for (const child of await store.childrenOf(parentId)) {
      if (isTerminal(child.state)) continue;
      await cancel(child.id, { waitMs: 0 }).catch((err: unknown) => {
        if (!(err instanceof JobRefused && err.code === 'INVALID_STATE')) throw err;
      });
    }
  }

  /**
   * Cancels a job. A waiting one is removed from its queue and recorded
   * cancelled at once; an active one is signalled on every worker process
   * (the one holding it aborts the handler and records `cancelled` with the
   * partial output), and this waits up to `waitMs` for its `finished` event.
   * A job with children takes them with it (`finish`, wherever it ends).
   * Returns the record as it then stands.
   */
  async function cancel(id: string, opts: { waitMs?: number } = {}): Promise<JobRow> {
    const row = await store.get(id);
    if (!row) throw new JobRefused('INVALID_STATE', 'no such job');
    if (isTerminal(row.state)) throw new JobRefused('INVALID_STATE', `the job is already ${row.state}`);
    const job = await queues[row.queue as keyof Queues]?.getJob(id);
    let removed = false;
    if (job) {
      const state = await job.getState();
      // remove() refuses a job that a worker locked meanwhile; then it is active and gets the signal below.
      // Its children are the terminal write's to cancel (they have records), not BullMQ's to delete with it.
      if (state === 'waiting' || state === 'prioritized' || state === 'delayed')
        removed = await job.remove({ removeChildren: false }).then(
          () => true,
          () => false,
        );
    } else if (row.state === 'queued') {
      removed = true;
    }
    if (removed) {
      await finish(id, { state: 'cancelled', error: { code: 'CANCELLED', message: 'cancelled before it started' } });
    } else {
      await store.requestCancel(id);
      await requestCancel(redis, keys, id);
      // Its children go now, not when its worker hears the signal: a parent whose worker died would
      // otherwise let them run on until it is handed back (its lock's time) and cancelled there.
      await cancelChildren(id).catch((err: unknown) => log.warn({ err, jobId: id }, 'could not cancel the children of a cancelled job'));
      await waitFinished(id, opts.waitMs ?? 5000);
    }
    return (await store.get(id))!;
  }

  /** Waits until the job's stream holds `finished` (true), or `ms` passes (false). Without a hub it only looks once. */
  async function waitFinished(id: string, ms: number): Promise<boolean> {
    const key = keys.jobStream(id);
    if ((await finishedSeq(redis, key)) !== undefined) return true;
    if (!deps.hub || ms <= 0) return false;
    const hub = deps.hub;
    return new Promise<boolean>((resolve) => {
      let unsubscribe: (() => void) | undefined;
      const done = (ok: boolean) => {
        clearTimeout(timer);
        unsubscribe?.();
        resolve(ok);
      };
      const timer = setTimeout(() => done(false), ms);
      // From the start of the stream: the hub backfills what was written before it subscribed.
      unsubscribe = hub.subscribe(key, 0, (e) => {
        if (e.event === 'finished') done(true);
      });
    });
  }

  return {
    store,
    /** The BullMQ queues, for the queue dashboard and the worker runtime only. */
    queues,

    get: (id: string) => store.get(id),
    getMany: (ids: readonly string[]) => store.getMany(ids),
    activeByInput: (kind: string, field: string, value: string) => store.activeByInput(kind, field, value),
    ownerOf: (id: string) => store.ownerOf(id),
    oldestQueuedAges: () => store.oldestQueuedAges(),

    list: store.list.bind(store),
    findByIdempotencyKey: (ownerId: string, key: string) => store.findByIdempotencyKey(ownerId, key),

    /**
     * Records a job and hands it to its queue. With an idempotency key already
     * used by this owner, returns the existing record (`created: false`) and
     * hands nothing off. A job that could not be handed off is not accepted:
     * its record is removed and NOT_ACCEPTED thrown.
     */
    async accept(spec: AcceptSpec): Promise<{ row: JobRow; created: boolean }> {
      const id = spec.id ?? randomUUID();
      const maxAttempts = spec.maxAttempts ?? spec.def.defaults.attempts;
      const job: NewJob = {
        id,
        kind: spec.def.kind,
        v: spec.def.v,
        queue: spec.def.queue,
        ownerId: spec.ownerId,
        priority: spec.priority,
        maxAttempts,
        input: spec.input,
        idempotencyKey: spec.idempotencyKey,
        requestHash: spec.requestHash,
        ...(spec.parent ? { parentId: spec.parent.id } : {}),
      };
      // Capped jobs take their owner's lock in their own statement; the others share statements (group commit).
      const inserted = spec.cap ? await store.insertCapped(job, spec.cap) : await inserts.run(job);
      if ('refused' in inserted) throw spec.cap!.refuse(inserted.refused);
      if (!inserted.created) return inserted;
      deps.failpoint?.('accept.after-record');
      try {
        await enqueue(spec.def, id, envelopeOf(spec.def, spec.input, spec.ownerId, spec.priority, spec.requestId), maxAttempts, spec.parent);
      } catch (cause) {
        await store.remove(id).catch(() => {});
        throw new JobRefused('NOT_ACCEPTED', 'the queue could not take the job; nothing was accepted', { cause });
      }
      return inserted;
    },

    /**
     * Records a job inside the caller's transaction, under an id derived from
     * `key` (the same key, the same job: scheduling twice records one). Hand it
     * off with `handOff` after the commit.
     */
    async record(trx: Knex, spec: { def: JobDefinition; key: string; ownerId: string; input: unknown; priority?: PriorityClass }): Promise<ScheduledJob> {
      const id = namedUuid(spec.key);
      const priority = spec.priority ?? spec.def.defaults.priority;
      const { row, created } = await createJobStore(trx, { keyPrefix }).insert({
        id,
        kind: spec.def.kind,
        v: spec.def.v,
        queue: spec.def.queue,
        ownerId: spec.ownerId,
        priority,
        maxAttempts: spec.def.defaults.attempts,
        input: spec.input,
        idempotencyKey: spec.key,
      });
      return { id: row.id, def: spec.def, envelope: envelopeOf(spec.def, row.input, spec.ownerId, priority), created };
    },

    /** Hands a recorded job to BullMQ; handing off an id BullMQ already holds is a no-op there. */
    async handOff(job: ScheduledJob): Promise<void> {
      await enqueue(job.def, job.id, job.envelope);
    },

    finish,
    stream,
    waitFinished,

    // ── the worker runtime's side ──────────────────────────────────────────

    /**
     * Starts attempt n (n = attempts + 1): undefined when the job is already terminal.
     * `cancelRequested` is what the record says; the Redis flag is read when the
     * attempt claims its stream (`claim`), in the same round trip.
     */
    async start(id: string): Promise<{ attempt: number; cancelRequested: boolean } | undefined> {
      return starts.run(id);
    },

    /**
     * A duplicate delivery of a job the record says is terminal: if its stream
     * never got `finished` (the worker that wrote the record died before the
     * stream append), writes it now from the record, as the attempt the record
     * says finished. Listeners then end as they would have.
     */
    async repairFinished(id: string): Promise<boolean> {
      if ((await finishedSeq(redis, keys.jobStream(id))) !== undefined) return false;
      const row = await store.get(id);
      if (!row || !isTerminal(row.state)) return false;
      const writer = stream(id, row.kind, row.attempts);
      await writer.init();
      const error: JobError | undefined = row.error_code
        ? { code: row.error_code as JobError['code'], message: row.error_message ?? '', ...(row.error_details ? { details: row.error_details } : {}) }
        : undefined;
      const usage: Usage | null =
        row.tokens_in === null && row.tokens_out === null
          ? null
          : { model: row.model ?? '', promptTokens: row.tokens_in ?? 0, completionTokens: row.tokens_out ?? 0, estimated: row.usage_estimated };
      const landed = await writer.finished({
        state: row.state,
        ...(row.result !== null && row.state !== 'failed' ? { result: row.result } : {}),
        ...(error ? { error } : {}),
        usage,
      });
      if (landed) log.warn({ jobId: id }, 'wrote the missing finished event of a job whose worker died after recording it');
      return landed;
    },

    /**
     * Claims the job's stream for attempt n (older attempts' writes are refused from
     * now on), and reads the cancel flag in the same step.
     */
    async claim(writer: JobStreamWriter, id: string): Promise<{ hadOutput: boolean; superseded: boolean; cancelRequested: boolean }> {
      return writer.init(keys.cancelFlag(id));
    },
    setProgress: (id: string, attempt: number, progress: unknown) => store.setProgress(id, attempt, progress),
    /** Back to queued for another attempt (retry or hand-back), with what this attempt consumed; false if superseded. */
    requeue: (id: string, attempt: number, error: JobError, usage?: Usage | null) => store.requeue(id, attempt, error, usage),
    /**
     * Tokens the owner consumed for this attempt outside its own metered call (a moderator's pick, a
     * knowledge extraction's LLM pass): recorded in usage_daily, then counted against the owner's token
     * budget (drawing on the job's reservation, if it holds one). False if superseded: nothing counted.
     */
    async addUsage(ownerId: string, usage: Usage, fence: { jobId: string; attempt: number; onJob?: boolean }): Promise<boolean> {
      if (!(await store.addUsage(ownerId, usage, fence))) return false;
      await deps.budgets
        ?.consume({ jobId: fence.jobId, ownerId, tokens: usage.promptTokens + usage.completionTokens })
        .catch((err: unknown) => log.error({ err, jobId: fence.jobId }, 'could not count tokens against the budget; usage_daily has them'));
      return true;
    },
    clearCancel: (id: string) => clearCancel(redis, keys, id),

    // ── the API's side ─────────────────────────────────────────────────────

    cancel,

    /** A job's children, in the order they were recorded (platform/jobs/children.ts). */
    children: (parentId: string) => store.childrenOf(parentId),
    cancelChildren,

    /**
     * Signals every worker process to abort the job if it runs it (and one that
     * picks it up later to skip it), without removing it from its queue or
     * waiting: the handler decides what an abort means (a discussion turn
     * commits its partial text).
     */
    async signalCancel(id: string): Promise<void> {
      await store.requestCancel(id);
      await requestCancel(redis, keys, id);
    },

    /**
     * Runs a failed or cancelled job again under the same id; its stream reopens (listeners get a `reset`).
     *
     * Retries of one job take turns: the record's row is locked for the whole admission, and a retry
     * that finds it locked is refused INVALID_STATE at once, before it admits anything. So of racing
     * retries exactly one reserves budget and re-queues the job, and a refused one has nothing of its
     * own to undo (it must never release the reservation, which is keyed by the job's id and would be
     * the winner's). `admit(row)` runs under the lock and answers the class to run at (admission may
     * lower the recorded one for the owner's role) and the owner's concurrent-jobs cap, which the
     * re-queue enforces in its own statement (store.reopen); over it `cap.refuse(inFlight)` is thrown
     * and the record stays as it was. When the retry is refused after `admit` returned (the cap, a
     * failed write), `undo` undoes what it did (releases its reservation) before the error is thrown.
     */
    async retry(id: string, opts: { requestId?: string; admit?: (row: JobRow) => Promise<RetryAdmission | undefined> } = {}): Promise<JobRow> {
      let admitted: RetryAdmission | undefined;
      let reopened: JobRow;
      try {
        reopened = await db.transaction(async (trx) => {
          const locked = createJobStore(trx, { keyPrefix });
          const row = await locked.lockForRetry(id);
          if (!row) throw new JobRefused('INVALID_STATE', 'the job is being retried by another request, or is gone');
          if (row.state !== 'failed' && row.state !== 'cancelled')
            throw new JobRefused('INVALID_STATE', `only failed or cancelled jobs can be retried; this one is ${row.state}`);
          if (!isJobKind(row.kind)) throw new JobRefused('UNKNOWN_KIND', `job kind ${row.kind} is no longer served`);
          admitted = await opts.admit?.(row);
          const done = await locked.reopen(id, { priority: admitted?.priority ?? row.priority, ownerId: row.owner_id, cap: admitted?.cap });
          if (!done) throw new JobRefused('INVALID_STATE', 'the job changed state meanwhile');
          if ('refused' in done) throw admitted!.cap!.refuse(done.refused);
          return done.row;
        });
      } catch (err) {
        if (admitted?.undo)
          await admitted.undo().catch((cause: unknown) => log.warn({ err: cause, jobId: id }, 'could not undo the admission of a refused retry'));
        throw err;
      }
      const def = jobs[reopened.kind as keyof typeof jobs] as JobDefinition;
      // Its earlier run's BullMQ job goes (the new run takes its id). Its children stay: they are recorded,
      // and the new run finds them (a parent's retry waits for any still running).
      const old = await queues[def.queue].getJob(id);
      if (old) await old.remove({ removeChildren: false }).catch(() => {});
      await reopenJobStream(redis, keys.jobStream(id));
      try {
        await enqueue(def, id, envelopeOf(def, reopened.input, reopened.owner_id, reopened.priority, opts.requestId), reopened.max_attempts);
      } catch (cause) {
        await finish(id, { state: 'failed', error: { code: 'INTERNAL', message: 'could not re-enqueue for retry' } });
        throw new JobRefused('NOT_ACCEPTED', 'the queue could not take the retry', { cause });
      }
      return reopened;
    },

    /**
     * Removes every trace of a readiness probe (store.discardProbes): its queue entry, its stream and its
     * record, and the records of probes older than `staleMs` that a dead process left behind.
     */
    async discardProbe(id: string, staleMs = 60_000): Promise<void> {
      const job = await queues.system.getJob(id);
      if (job) await job.remove().catch(() => {});
      await redis.del(keys.jobStream(id));
      await store.discardProbes([id], staleMs);
    },

    /** True when Postgres answers (the worker runtime resumes taking jobs once it does). */
    async ping(): Promise<boolean> {
      return db.raw('select 1').then(
        () => true,
        () => false,
      );
    },

    /** Jobs per queue and BullMQ state, for the metrics endpoint. */
    async queueCounts(): Promise<Record<string, Record<string, number>>> {
      const out: Record<string, Record<string, number>> = {};
      for (const [name, queue] of Object.entries(queues))
        out[name] = await queue.getJobCounts('wait', 'prioritized', 'active', 'delayed', 'completed', 'failed');
      return out;
    },

    // ── housekeeping (the sweeper) ─────────────────────────────────────────

    /**
     * Aging: a queued job that waited `agingMs` in its class moves up one
     * (batch → normal → interactive), in BullMQ and in the record, but never
     * above `ceilings[role]`, the highest class its owner's role may ask for
     * (a role not listed has no ceiling): aging keeps a role's work moving
     * within its classes, and never lets it overtake a class it may not use.
     */
    async age(agingMs: number, ceilings: Partial<Record<string, PriorityClass>> = {}, limit = 200): Promise<number> {
      const rank = (p: PriorityClass) => PriorityClass.options.indexOf(p);
      let moved = 0;
      for (const from of ['normal', 'batch'] as PriorityClass[]) {
        const to = promoted(from)!;
        const held = Object.entries(ceilings)
          .filter(([, ceiling]) => ceiling !== undefined && rank(ceiling) > rank(to))
          .map(([role]) => role);
        for (const row of await store.agingCandidates(from, agingMs, limit, held)) {
          const job = await bullJob(row.queue, row.id);
          if (!job) continue;
          const state = await job.getState();
          if (state !== 'prioritized' && state !== 'waiting' && state !== 'delayed') continue;
          await job.changePriority({ priority: bullPriority(to) });
          await store.setPriority(row.id, to);
          moved++;
        }
      }
      return moved;
    },

    /**
     * Reconciliation: every accepted job ends in a recorded terminal state. A
     * record left non-terminal for `staleAfterMs` is compared with its BullMQ
     * job: missing while queued → handed off again (the process died between
     * record and hand-off); failed in BullMQ (stalled too often) or missing
     * while active → recorded failed as STALLED (fenced on the attempt it saw,
     * so a worker that just picked the job up is not overruled).
     */
    async reconcile(staleAfterMs: number, limit = 200): Promise<{ handedOff: number; failed: number }> {
      const out = { handedOff: 0, failed: 0 };
      for (const row of await store.stale(staleAfterMs, limit)) {
        if (!isJobKind(row.kind)) continue;
        const job = await bullJob(row.queue, row.id);
        const state = job ? await job.getState() : 'missing';
        if (state === 'missing' && row.state === 'queued') {
          const def = jobs[row.kind] as JobDefinition;
          const parent = row.parent_id ? await store.get(row.parent_id) : undefined;
          if (parent && isTerminal(parent.state)) {
            // Its parent ended meanwhile: nothing waits for it any more.
            if (await finish(row.id, { state: 'cancelled', error: { code: 'CANCELLED', message: `its parent job ${parent.id} ended ${parent.state}` } }))
              out.failed++;
            continue;
          }
          const link = parent && def.childOf ? { id: parent.id, queue: def.childOf } : undefined;
          // Under its parent again, so the dashboard keeps the tree; alone if BullMQ no longer holds the parent.
          await enqueue(def, row.id, envelopeOf(def, row.input, row.owner_id, row.priority), row.max_attempts, link).catch((err: unknown) =>
            link ? enqueue(def, row.id, envelopeOf(def, row.input, row.owner_id, row.priority), row.max_attempts) : Promise.reject(err),
          );
          log.warn({ jobId: row.id }, 'reconciled: handed off a recorded job missing from its queue');
          out.handedOff++;
          continue;
        }
        let error: JobError | undefined;
        if (state === 'failed') error = { code: 'STALLED', message: job?.failedReason || 'failed in the queue without a recorded outcome' };
        else if (state === 'missing' && row.state === 'active') error = { code: 'STALLED', message: 'job vanished from its queue while active' };
        else if (state === 'completed') error = { code: 'INTERNAL', message: 'queue reports completion without a recorded outcome' };
        if (!error) continue;
        if (await finish(row.id, { state: 'failed', error }, { attempt: row.attempts, state: row.state as 'queued' | 'active' })) {
          log.warn({ jobId: row.id, error }, 'reconciled: recorded a terminal state');
          out.failed++;
        }
      }
      return out;
    },

    async close(): Promise<void> {
      await closeQueues(queues);
    },
  };

  async function bullJob(queue: string, id: string): Promise<Job | undefined> {
    const q = queues[queue as keyof Queues];
    return q ? q.getJob(id) : undefined;
  }
}

export type JobLifecycle = ReturnType<typeof createJobLifecycle>;
