/**
 * The worker runtime: one BullMQ Worker per queue, running the handlers.
 *
 * Per job: validate the envelope and the input again (a bad payload is
 * unrecoverable), start an attempt in Postgres, stream events to the job's
 * Redis Stream, run the handler with a narrow context, then write exactly one
 * terminal record (conditional update: the first terminal write wins) and
 * the `finished` event. Retryable failures with attempts left go back to
 * BullMQ for a jittered backoff; everything else ends here.
 */
import { Worker, UnrecoverableError, WaitingError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../../platform/config.ts';
import { clearCancel, isCancelRequested, onCancel } from '../../platform/cancel-bus.ts';
import { toJobError } from '../../platform/job-failure.ts';
import type { JobStore } from '../../platform/job-store.ts';
import { JobStreamWriter } from '../../platform/job-stream.ts';
import type { Keys } from '../../platform/keys.ts';
import type { Logger } from '../../platform/log.ts';
import type { WorkerMetrics } from '../../platform/metrics.ts';
import { backoffDelay, bullPrefix } from '../../platform/queues.ts';
import { isRetryable, isJobKind, jobs, JobEnvelope, QueueName, type JobDefinition, type JobError, type Usage } from '../../shared/index.ts';
import { CANCELLED, SHUTDOWN, type Handler, type HandlerContext } from './handler.ts';

export interface HostDeps {
  config: Config;
  redis: Redis;
  /** A connection for blocking commands (BullMQ workers). */
  bullConnection: Redis;
  /** A connection in subscriber mode for the cancel channel. */
  subscriber: Redis;
  store: JobStore;
  keys: Keys;
  log: Logger;
  metrics: WorkerMetrics;
  handlers: Record<string, Handler<JobDefinition>>;
  /** Queues this process serves; default all. */
  queues?: QueueName[];
  /** The `model` label for a model name (bounded: see model-label.ts). @defaultValue every name is "other" */
  modelLabel?: (model: string) => string;
}

interface Running {
  controller: AbortController;
  queue: QueueName;
}

export class WorkerHost {
  private readonly workers: Worker[] = [];
  private readonly running = new Map<string, Running>();
  private unsubscribe: (() => Promise<void>) | undefined;
  private closing = false;

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
    this.unsubscribe = await onCancel(this.deps.subscriber, keys, (id) => this.running.get(id)?.controller.abort(CANCELLED));
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
      worker.on('stalled', (jobId) => {
        this.deps.metrics.stalled.inc({ queue });
        this.deps.log.warn({ jobId, queue }, 'job stalled: its lock expired; BullMQ moves it back to wait');
      });
      this.workers.push(worker);
    }
    await Promise.all(this.workers.map((w) => w.waitUntilReady()));
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
      for (const r of this.running.values()) r.controller.abort(SHUTDOWN);
    }, graceMs);
    await closing;
    clearTimeout(timer);
    await this.unsubscribe?.();
  }

  private async process(queue: QueueName, job: Job, token: string | undefined): Promise<unknown> {
    const { store, keys, redis, log, metrics, config } = this.deps;
    const id = job.id!;
    const pickedAt = Date.now();

    const envelope = JobEnvelope.safeParse(job.data);
    const kind = envelope.success ? envelope.data.kind : 'unknown';
    const def = envelope.success && isJobKind(kind) ? (jobs[kind] as JobDefinition) : undefined;
    if (!envelope.success || !def) {
      return this.reject(id, kind, { code: 'INVALID_PAYLOAD', message: envelope.success ? `unknown job kind "${kind}"` : 'malformed job envelope' });
    }
    if (envelope.data.v !== def.v && !def.accepts?.includes(envelope.data.v)) {
      return this.reject(id, kind, { code: 'INVALID_PAYLOAD', message: `${kind} payload version ${envelope.data.v} is not accepted (this worker runs v${def.v})` }, envelope.data.requestId);
    }
    const input = def.input.safeParse(envelope.data.input);
    if (!input.success) {
      return this.reject(id, kind, {
        code: 'INVALID_PAYLOAD',
        message: `${kind} input failed validation at pick-up`,
        details: input.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
      }, envelope.data.requestId);
    }

    // The request id of the API call that submitted the job travels in the envelope, so one grep finds both ends.
    const requestId = envelope.data.requestId;
    const started = await store.markActive(id);
    if (!started) {
      log.info({ jobId: id, requestId }, 'job already terminal; skipping duplicate delivery');
      return { duplicate: true };
    }
    const { attempt } = started;
    const jobLog = log.child({ jobId: id, kind, attempt, requestId });
    jobLog.info({ queue, waitedMs: Math.max(0, pickedAt - job.timestamp) }, 'job started');
    const controller = new AbortController();
    this.running.set(id, { controller, queue });
    const writer = new JobStreamWriter(redis, keys.jobStream(id), attempt, config.streams);
    // The cancel flag and the stream's last entry in one round trip (both commands go out back to back).
    const [cancelled, { hadOutput }] = await Promise.all([started.cancelRequested || isCancelRequested(redis, keys, id), writer.init()]);
    if (cancelled) controller.abort(CANCELLED);
    if (hadOutput) writer.reset();

    let meter: { model: string; promptTokensEstimate: number } | undefined;
    let text = '';
    let tokens = 0;
    let firstTokenAt: number | undefined;
    let lastProgressWrite = 0;
    const ctx: HandlerContext = {
      jobId: id,
      attempt,
      signal: controller.signal,
      log: jobLog,
      progress: (p) => {
        writer.progress(p);
        const now = Date.now();
        if (now - lastProgressWrite > 1000) {
          lastProgressWrite = now;
          store.setProgress(id, p).catch((err: unknown) => log.warn({ err, jobId: id }, 'progress write failed'));
        }
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
    };
    const partialUsage = (): Usage | null =>
      meter ? { model: meter.model, promptTokens: meter.promptTokensEstimate, completionTokens: tokens, estimated: true } : null;
    // What an attempt that will run again consumed: counted only once output began, since only then
    // is it certain that Ollama evaluated the prompt (a refused connection costs nothing).
    const attemptUsage = (): Usage | null => (def.metered && tokens > 0 ? partialUsage() : null);

    // The model the job will use: its own, or the configured default of its kind ('' for kinds without a model).
    const jobModel = (input.data as { model?: unknown }).model;
    const model = typeof jobModel === 'string' ? jobModel : kind === 'llm.chat' ? config.ollama.chatModel : kind === 'embed.batch' ? config.ollama.embedModel : '';
    metrics.queueWait.observe({ kind, model: this.modelLabel(model) }, Math.max(0, pickedAt - job.timestamp) / 1000);
    metrics.active.inc({ queue });
    const handler = this.deps.handlers[kind]!;
    try {
      if (controller.signal.aborted) throw controller.signal.reason;
      const raw = await handler(input.data, ctx);
      const result = def.result.parse(raw) as { usage?: Usage };
      const usage = def.metered ? (result.usage ?? partialUsage()) : null;
      const done = await store.finish(id, { state: 'completed', result, usage });
      if (done) await writer.finished({ state: 'completed', result, usage: done.usage });
      jobLog.info({ state: 'completed', ms: Date.now() - pickedAt, tokens }, 'job finished');
      // A cache hit replays its text at once: no Ollama latency or speed to observe.
      const cached = (result as { cached?: unknown }).cached === true;
      this.observeDone(kind, 'completed', pickedAt, usage, cached ? undefined : firstTokenAt, tokens);
      return { ok: true };
    } catch (err) {
      await writer.flush();
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
      if (reason === SHUTDOWN && token) {
        // Hand the job back without spending an attempt; another worker resumes it from scratch.
        const spent = attemptUsage();
        await store.requeue(id, { code: 'INTERNAL', message: 'worker shut down; job handed back' }, spent);
        if (spent) this.observeTokens(spent);
        await job.moveToWait(token);
        jobLog.info('job handed back on shutdown');
        throw new WaitingError();
      }
      if (reason === CANCELLED) {
        const error: JobError = { code: 'CANCELLED', message: 'cancelled on request' };
        const usage = def.metered ? partialUsage() : null;
        const result = text ? { partial: true, text } : undefined;
        const done = await store.finish(id, { state: 'cancelled', result, error, usage });
        if (done) await writer.finished({ state: 'cancelled', result, error, usage: done.usage });
        await clearCancel(redis, keys, id);
        jobLog.info({ state: 'cancelled', ms: Date.now() - pickedAt, tokens }, 'job finished');
        this.observeDone(kind, 'cancelled', pickedAt, usage, firstTokenAt, tokens);
        throw new UnrecoverableError('cancelled');
      }
      const error = toJobError(err);
      const attemptsLeft = (job.opts.attempts ?? 1) - (job.attemptsMade + 1);
      if (isRetryable(error.code) && attemptsLeft > 0) {
        jobLog.warn({ error, attemptsLeft }, 'attempt failed; retrying');
        const spent = attemptUsage();
        await store.requeue(id, error, spent);
        if (spent) this.observeTokens(spent);
        metrics.outcomes.inc({ kind, outcome: 'retried' });
        throw new Error(`${error.code}: ${error.message}`);
      }
      jobLog.error({ error, state: 'failed', ms: Date.now() - pickedAt }, 'job failed');
      const usage = def.metered ? partialUsage() : null;
      const result = text ? { partial: true, text } : undefined;
      const done = await store.finish(id, { state: 'failed', result, error, usage });
      if (done) await writer.finished({ state: 'failed', error, usage: done.usage });
      this.observeDone(kind, 'failed', pickedAt, usage, firstTokenAt, tokens);
      throw new UnrecoverableError(`${error.code}: ${error.message}`);
    } finally {
      this.running.delete(id);
      metrics.active.dec({ queue });
    }
  }

  /** An unrecoverable payload problem: recorded as failed, never retried. */
  private async reject(id: string, kind: string, error: JobError, requestId?: string): Promise<never> {
    this.deps.log.warn({ jobId: id, kind, requestId, error }, 'rejecting payload');
    if (await this.deps.store.finish(id, { state: 'failed', error })) {
      const writer = new JobStreamWriter(this.deps.redis, this.deps.keys.jobStream(id), 0, this.deps.config.streams);
      await writer.init();
      await writer.finished({ state: 'failed', error });
    }
    this.deps.metrics.outcomes.inc({ kind, outcome: 'rejected' });
    throw new UnrecoverableError(`${error.code}: ${error.message}`);
  }

  private modelLabel(model: string | undefined): string {
    return model ? (this.deps.modelLabel ?? (() => 'other'))(model) : '';
  }

  private observeTokens(usage: Usage): void {
    const model = this.modelLabel(usage.model);
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
        const model = this.modelLabel(usage.model);
        metrics.ttft.observe({ model }, (firstTokenAt - pickedAt) / 1000);
        const genSeconds = (now - firstTokenAt) / 1000;
        if (genSeconds > 0 && tokens > 1) metrics.tokensPerSecond.observe({ model }, (tokens - 1) / genSeconds);
      }
    }
  }
}

