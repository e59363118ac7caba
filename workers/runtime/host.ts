/**
 * The worker runtime: one BullMQ Worker per queue, running the handlers.
 *
 * Per job: validate the envelope and the input again (a bad payload is
 * unrecoverable), start attempt n through the job lifecycle, claim the job's
 * stream for attempt n, run the handler with a narrow context, then end with
 * one terminal write (the lifecycle writes `finished` and settles budgets).
 * Retryable failures with attempts left go back to BullMQ for a jittered
 * backoff; everything else ends here.
 *
 * Fencing: every write of attempt n (stream events, progress, requeue, usage,
 * the terminal write) applies only while n still owns the job. An attempt
 * whose lock BullMQ failed to renew, or whose stream append was refused
 * because a newer attempt claimed the job, is aborted with reason
 * `superseded` and writes nothing more: the newer attempt's outcome stands.
 *
 * This file and sweeper.ts are the only places outside platform/jobs that
 * use BullMQ, and only its Worker: handlers never see it.
 */
import { DelayedError, Worker, UnrecoverableError, WaitingError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../../platform/config.ts';
import { dependencyDown } from '../../platform/connections/index.ts';
import { JobFailure, onCancel, toJobError, type JobLifecycle } from '../../platform/jobs/index.ts';
import type { Keys } from '../../platform/keys.ts';
import type { Logger } from '../../platform/observability/index.ts';
import type { WorkerMetrics } from '../../platform/observability/index.ts';
import { backoffDelay, bullPrefix } from '../../platform/jobs/index.ts';
import {
  isRetryable,
  isJobKind,
  jobs,
  JobEnvelope,
  QueueName,
  type JobDefinition,
  type JobError,
  type JobKind,
  type Jobs,
  type Usage,
} from '../../shared/index.ts';
import { CANCELLED, SHUTDOWN, SUPERSEDED, type AbortReason, type Handler, type HandlerContext, type HandlerMap } from './handler.ts';

export interface HostDeps {
  config: Config;
  /** A connection for blocking commands (BullMQ workers). */
  bullConnection: Redis;
  /** A connection in subscriber mode for the cancel channel. */
  subscriber: Redis;
  jobs: JobLifecycle;
  keys: Keys;
  log: Logger;
  metrics: WorkerMetrics;
  /** A model name as a metric label: bounded to installed models, `other` for the rest (OllamaStatus.modelLabel). */
  modelLabel: (model: string) => string;
  handlers: HandlerMap<Jobs>;
  /** Queues this process serves; default all. */
  queues?: QueueName[];
}

interface Running {
  controller: AbortController;
  queue: QueueName;
  attempt: number;
}

export class WorkerHost {
  private readonly workers: Worker[] = [];
  private readonly running = new Map<string, Running>();
  private unsubscribe: (() => Promise<void>) | undefined;
  private closing = false;
  /** Set while Postgres is down: the workers take no jobs until a probe sees it answer again. */
  private outage: Promise<void> | undefined;

  constructor(private readonly deps: HostDeps) {}

  get activeJobs(): number {
    return this.running.size;
  }

  /** Taking jobs: started, not stopping, and every BullMQ worker running. */
  get accepting(): boolean {
    return !this.closing && this.workers.length > 0 && this.workers.every((w) => w.isRunning());
  }

  async start(): Promise<void> {
    const { config, keys } = this.deps;
    this.unsubscribe = await onCancel(this.deps.subscriber, keys, (id) => this.abort(id, CANCELLED));
    for (const queue of this.deps.queues ?? QueueName.options) {
      const worker = new Worker(queue, (job, token) => this.process(queue, job, token), {
        connection: this.deps.bullConnection,
        prefix: bullPrefix(config.keyPrefix, queue),
        concurrency: config.workers.concurrency[queue],
        lockDuration: config.workers.lockMs,
        stalledInterval: config.workers.stalledIntervalMs,
        maxStalledCount: 2,
        settings: {
          backoffStrategy: (attemptsMade, _type, _err, job) => {
            const kind = (job?.data as { kind?: string } | undefined)?.kind;
            return kind && isJobKind(kind) ? backoffDelay(jobs[kind], attemptsMade) : 1000;
          },
        },
      });
      worker.on('error', (err) => this.deps.log.error({ err, queue }, 'worker error'));
      // A lock that could not be renewed means another worker may take the job over: stop this attempt now.
      worker.on('lockRenewalFailed', (ids) => {
        for (const id of ids) this.abort(id, SUPERSEDED);
      });
      worker.on('stalled', (jobId) => {
        this.deps.metrics.stalled.inc({ queue });
        this.deps.log.warn({ jobId, queue }, 'job stalled: its lock expired; BullMQ moves it back to wait');
      });
      this.workers.push(worker);
    }
    await Promise.all(this.workers.map((w) => w.waitUntilReady()));
  }

  /**
   * Postgres stopped answering: take no new jobs until it answers again, then
   * resume by ourselves. Jobs picked up meanwhile are handed back (delayed), and
   * finished ones wait for their record write (see `durably`).
   */
  private pauseForOutage(why: unknown): void {
    if (this.outage || this.closing) return;
    const { log, jobs } = this.deps;
    log.warn({ err: why instanceof Error ? why.message : String(why) }, 'Postgres is not answering: pausing the workers until it does');
    this.outage = (async () => {
      await Promise.all(this.workers.map((w) => w.pause(true).catch(() => {})));
      while (!this.closing && !(await jobs.ping())) await new Promise((r) => setTimeout(r, 1000));
      if (!this.closing) for (const w of this.workers) w.resume();
      log.info('Postgres answers again: the workers take jobs again');
    })().finally(() => (this.outage = undefined));
  }

  /** Runs a record write, waiting out an outage of Postgres or Redis for up to `outageWaitMs` (the job's lock is kept meanwhile). */
  private async durably<T>(what: string, write: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.deps.config.workers.outageWaitMs;
    for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
      try {
        return await write();
      } catch (err) {
        const dep = dependencyDown(err);
        if (!dep || Date.now() + delay > deadline || this.closing) throw err;
        if (dep === 'postgres') this.pauseForOutage(err);
        this.deps.log.warn({ dep, what, retryInMs: delay }, 'a record write waits for a backing service');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private abort(id: string, reason: AbortReason): void {
    const r = this.running.get(id);
    if (r && !r.controller.signal.aborted) {
      if (reason === SUPERSEDED)
        this.deps.log.warn({ jobId: id, attempt: r.attempt }, 'attempt superseded: its lock was lost or a newer attempt owns the job; stopping it');
      r.controller.abort(reason);
    }
  }

  /**
   * Graceful stop: take no new jobs, give active ones `graceMs` to finish,
   * then abort them with reason "shutdown" so each is handed back to the
   * queue (not failed, no attempt spent) for another worker.
   */
  async stop(graceMs = this.deps.config.workers.shutdownGraceMs): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const closing = Promise.all(this.workers.map((w) => w.close()));
    const timer = setTimeout(() => {
      for (const id of this.running.keys()) this.abort(id, SHUTDOWN);
    }, graceMs);
    await closing;
    clearTimeout(timer);
    await this.unsubscribe?.();
  }

  private async process(queue: QueueName, job: Job, token: string | undefined): Promise<unknown> {
    const { jobs: lifecycle, log, metrics, config } = this.deps;
    const id = job.id!;
    const pickedAt = Date.now();

    const envelope = JobEnvelope.safeParse(job.data);
    const kind = envelope.success ? envelope.data.kind : 'unknown';
    if (!envelope.success || !isJobKind(kind)) {
      return this.reject(id, kind, { code: 'INVALID_PAYLOAD', message: envelope.success ? `unknown job kind "${kind}"` : 'malformed job envelope' });
    }
    const def: JobDefinition = jobs[kind];
    if (envelope.data.v !== def.v && !def.accepts?.includes(envelope.data.v)) {
      return this.reject(
        id,
        kind,
        { code: 'INVALID_PAYLOAD', message: `${kind} payload version ${envelope.data.v} is not accepted (this worker runs v${def.v})` },
        envelope.data.requestId,
      );
    }
    const input = def.input.safeParse(envelope.data.input);
    if (!input.success) {
      return this.reject(
        id,
        kind,
        {
          code: 'INVALID_PAYLOAD',
          message: `${kind} input failed validation at pick-up`,
          details: input.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
        },
        envelope.data.requestId,
      );
    }

    // The request id of the API call that submitted the job travels in the envelope, so one grep finds both ends.
    const requestId = envelope.data.requestId;
    let started: Awaited<ReturnType<JobLifecycle['start']>>;
    try {
      started = await lifecycle.start(id);
    } catch (err) {
      if (!dependencyDown(err) || !token) throw err;
      // The record cannot be written: give the job back untouched (no attempt spent) and stop taking more.
      if (dependencyDown(err) === 'postgres') this.pauseForOutage(err);
      await job.moveToDelayed(Date.now() + 2000, token);
      throw new DelayedError();
    }
    if (!started) {
      // Its worker may have died between the record and the stream's `finished`: listeners must still end.
      await lifecycle.repairFinished(id).catch((err: unknown) => log.warn({ err, jobId: id }, 'could not repair the finished event'));
      log.info({ jobId: id, requestId }, 'job already terminal; skipping duplicate delivery');
      return { duplicate: true };
    }
    const { attempt } = started;
    const jobLog = log.child({ jobId: id, kind, attempt, requestId });
    jobLog.info({ queue, waitedMs: Math.max(0, pickedAt - job.timestamp) }, 'job started');
    const controller = new AbortController();
    this.running.set(id, { controller, queue, attempt });
    const writer = lifecycle.stream(id, kind, attempt, () => this.abort(id, SUPERSEDED));
    // Claim the stream for this attempt before anything is written (older attempts' appends are refused
    // from now on); the cancel flag comes back in the same round trip.
    const { hadOutput, cancelRequested } = await lifecycle.claim(writer, id);
    if (started.cancelRequested || cancelRequested) controller.abort(CANCELLED);
    if (hadOutput) writer.reset();

    let meter: { model: string; promptTokensEstimate: number } | undefined;
    let text = '';
    let tokens = 0;
    let firstTokenAt: number | undefined;
    let lastProgressWrite = 0;
    /** The last progress when its record write was skipped (at most one a second): the terminal write stores it. */
    let unwritten: { p: unknown } | undefined;
    const attemptsLeft = () => (job.opts.attempts ?? 1) - (job.attemptsMade + 1);
    const ctx: HandlerContext = {
      jobId: id,
      attempt,
      ownerId: envelope.data.ownerId,
      signal: controller.signal,
      get abortReason() {
        return controller.signal.aborted ? (controller.signal.reason as AbortReason) : undefined;
      },
      willRetry: (error) => !controller.signal.aborted && isRetryable(error.code) && attemptsLeft() > 0,
      log: jobLog,
      progress: (p) => {
        writer.progress(p);
        const now = Date.now();
        if (now - lastProgressWrite > 1000) {
          lastProgressWrite = now;
          unwritten = undefined;
          lifecycle.setProgress(id, attempt, p).catch((err: unknown) => log.warn({ err, jobId: id }, 'progress write failed'));
        } else unwritten = { p };
      },
      emitTokens: (t, n = 1) => {
        firstTokenAt ??= Date.now();
        text += t;
        tokens += n;
        writer.tokens(t);
      },
      meter: (m) => {
        meter = m;
      },
      // A kind with no metered call of its own shows these tokens as its usage.
      addUsage: (ownerId, usage) => lifecycle.addUsage(ownerId, usage, { jobId: id, attempt, onJob: !def.metered }),
    };
    const partialUsage = (): Usage | null =>
      meter ? { model: meter.model, promptTokens: meter.promptTokensEstimate, completionTokens: tokens, estimated: true } : null;
    // What an attempt that will run again consumed: counted only once output began, since only then
    // is it certain that Ollama evaluated the prompt (a refused connection costs nothing).
    const attemptUsage = (): Usage | null => (def.metered && tokens > 0 ? partialUsage() : null);
    const fence = { attempt, writer };

    // The model the job will use: its own, or the configured default of its kind ('' for kinds without a model).
    const jobModel = (input.data as { model?: unknown }).model;
    const model =
      typeof jobModel === 'string' ? jobModel : kind === 'llm.chat' ? config.ollama.chatModel : kind === 'embed.batch' ? config.ollama.embedModel : '';
    metrics.queueWait.observe({ kind, model: model && this.deps.modelLabel(model) }, Math.max(0, pickedAt - job.timestamp) / 1000);
    metrics.active.inc({ queue });
    const handler = this.handlerOf(kind);
    try {
      if (controller.signal.aborted) throw controller.signal.reason;
      const raw = await handler(input.data, ctx);
      if (controller.signal.reason === SUPERSEDED) throw SUPERSEDED;
      const result = def.result.parse(raw) as { usage?: Usage };
      // Results live in Postgres for good and in the job's stream until it expires: bounded per kind, refused above.
      const resultBytes = Buffer.byteLength(JSON.stringify(result));
      const resultLimit = config.jobLimits.of(kind).resultBytes;
      if (resultBytes > resultLimit) {
        throw new JobFailure(
          'RESULT_TOO_LARGE',
          `the result is ${resultBytes} bytes of JSON, above the bound of ${resultLimit} bytes for ${kind}; nothing was kept`,
          { details: { resultBytes, limitBytes: resultLimit } },
        );
      }
      const usage = def.metered ? (result.usage ?? partialUsage()) : null;
      if (def.fansOut) await this.childrenSettled(job, jobLog);
      // The record keeps the progress the job ended with (in the terminal write), not one from up to a second before.
      const done = await this.durably('complete', () => lifecycle.finish(id, { state: 'completed', result, usage, progress: unwritten?.p }, fence));
      if (!done) jobLog.warn('completed, but the record was already terminal or owned by a newer attempt; this outcome is dropped');
      else jobLog.info({ state: 'completed', ms: Date.now() - pickedAt, tokens }, 'job finished');
      // A cache hit replays its text at once: no Ollama latency or speed to observe.
      const cached = (result as { cached?: unknown }).cached === true;
      this.observeDone(kind, 'completed', pickedAt, usage, cached ? undefined : firstTokenAt, tokens);
      return { ok: true };
    } catch (err) {
      await writer.flush();
      const reason = controller.signal.aborted ? (controller.signal.reason as AbortReason) : undefined;
      if (reason === SUPERSEDED || writer.superseded) {
        // Another attempt owns the job: its outcome stands; this one writes nothing, and BullMQ refuses its move (no lock).
        metrics.outcomes.inc({ kind, outcome: 'superseded' });
        throw new Error('superseded: another attempt owns this job');
      }
      if (reason === SHUTDOWN && token) {
        // Hand the job back without spending an attempt; another worker resumes it from scratch.
        const spent = attemptUsage();
        if (await this.durably('hand back', () => lifecycle.requeue(id, attempt, { code: 'INTERNAL', message: 'worker shut down; job handed back' }, spent))) {
          if (spent) this.observeTokens(spent);
          await job.moveToWait(token);
          jobLog.info('job handed back on shutdown');
          throw new WaitingError();
        }
        throw new Error('superseded: another attempt owns this job');
      }
      if (reason === CANCELLED) {
        const error: JobError = { code: 'CANCELLED', message: 'cancelled on request' };
        const usage = def.metered ? partialUsage() : null;
        const result = text ? { partial: true, text } : undefined;
        await this.durably('cancel', () => lifecycle.finish(id, { state: 'cancelled', result, error, usage }, fence));
        await lifecycle.clearCancel(id);
        jobLog.info({ state: 'cancelled', ms: Date.now() - pickedAt, tokens }, 'job finished');
        this.observeDone(kind, 'cancelled', pickedAt, usage, firstTokenAt, tokens);
        throw new UnrecoverableError('cancelled');
      }
      const error = toJobError(err);
      if (ctx.willRetry(error)) {
        jobLog.warn({ error, attemptsLeft: attemptsLeft() }, 'attempt failed; retrying');
        const spent = attemptUsage();
        if (await this.durably('requeue', () => lifecycle.requeue(id, attempt, error, spent))) {
          if (spent) this.observeTokens(spent);
          metrics.outcomes.inc({ kind, outcome: 'retried' });
          throw new Error(`${error.code}: ${error.message}`);
        }
        throw new Error('superseded: another attempt owns this job');
      }
      jobLog.error({ error, state: 'failed', ms: Date.now() - pickedAt }, 'job failed');
      const usage = def.metered ? partialUsage() : null;
      const result = text ? { partial: true, text } : undefined;
      await this.durably('fail', () => lifecycle.finish(id, { state: 'failed', result, error, usage }, fence));
      this.observeDone(kind, 'failed', pickedAt, usage, firstTokenAt, tokens);
      throw new UnrecoverableError(`${error.code}: ${error.message}`);
    } finally {
      this.running.delete(id);
      metrics.active.dec({ queue });
    }
  }

  /**
   * A parent completes only once BullMQ counts none of its children pending:
   * a child's record ends a moment before its queue moves it, and BullMQ
   * refuses to complete a parent with pending children. Waits up to three
   * lock durations (a child whose worker died in that moment is picked up
   * again by then), then goes on with a warning.
   */
  private async childrenSettled(job: Job, log: Logger): Promise<void> {
    const deadline = Date.now() + 3 * this.deps.config.workers.lockMs;
    for (;;) {
      const { unprocessed = 0 } = await job.getDependenciesCount({ unprocessed: true });
      if (unprocessed === 0) return;
      if (Date.now() > deadline) {
        log.warn({ unprocessed }, 'children still pending in the queue after their records ended; completing anyway');
        return;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /**
   * The handler of a kind, called with input that kind's schema has just validated. TypeScript
   * cannot follow the correlation between a kind, its schema and its handler through the union
   * of kinds, so it is asserted here, once, where the validation that makes it true happens.
   */
  private handlerOf(kind: JobKind): Handler<JobDefinition> {
    return this.deps.handlers[kind] as Handler<JobDefinition>;
  }

  /** An unrecoverable payload problem: recorded as failed (before any attempt started), never retried. */
  private async reject(id: string, kind: string, error: JobError, requestId?: string): Promise<never> {
    this.deps.log.warn({ jobId: id, kind, requestId, error }, 'rejecting payload');
    await this.deps.jobs.finish(id, { state: 'failed', error }, { state: 'queued' });
    this.deps.metrics.outcomes.inc({ kind, outcome: 'rejected' });
    throw new UnrecoverableError(`${error.code}: ${error.message}`);
  }

  private observeTokens(usage: Usage): void {
    const model = this.deps.modelLabel(usage.model ?? '');
    this.deps.metrics.tokens.inc({ model, direction: 'in' }, usage.promptTokens);
    this.deps.metrics.tokens.inc({ model, direction: 'out' }, usage.completionTokens);
  }

  private observeDone(kind: string, outcome: string, pickedAt: number, usage: Usage | null, firstTokenAt: number | undefined, tokens: number): void {
    const { metrics } = this.deps;
    const now = Date.now();
    metrics.jobDuration.observe({ kind, outcome }, (now - pickedAt) / 1000);
    metrics.outcomes.inc({ kind, outcome });
    if (usage?.model) {
      this.observeTokens(usage);
      if (firstTokenAt !== undefined) {
        const model = this.deps.modelLabel(usage.model);
        metrics.ttft.observe({ model }, (firstTokenAt - pickedAt) / 1000);
        const genSeconds = (now - firstTokenAt) / 1000;
        if (genSeconds > 0 && tokens > 1) metrics.tokensPerSecond.observe({ model }, (tokens - 1) / genSeconds);
      }
    }
  }
}
