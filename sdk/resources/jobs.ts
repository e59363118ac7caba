/** `client.jobs`: submit, read, list, cancel, retry, stream and run jobs. */
import {
  jobEvents,
  type JobEvent,
  type JobList,
  type JobState,
  type JobSummary,
  type JobView,
  type ListJobsQuery,
  type PriorityClass,
  type PublicJobKind,
  type SubmittedJob,
} from '../../shared/index.ts';
import { abortError, jobFailure } from '../errors.ts';
import type { ResourceContext } from '../internal/context.ts';
import type { EventStream, StreamOptions } from '../internal/event-stream.ts';
import { randomId } from '../internal/ids.ts';
import { paginate, type Paginated } from '../internal/pages.ts';
import type { CallOptions, JobInput, JobResult, StreamTransport } from '../types.ts';

export interface SubmitOptions extends CallOptions {
  priority?: PriorityClass;
  /**
   * Deduplicates the submission: the same key and body give the same job. One is made for every call
   * (and kept across that call's retries); pass your own to deduplicate across calls or processes.
   */
  idempotencyKey?: string;
}

/** What a submit resolves to: the job's id, kind, state and links; `replayed` when the key had been seen. */
export type Submitted = SubmittedJob & { replayed: boolean };

export interface JobStreamOptions extends StreamOptions {
  /** Also cancel the job on the server when the stream is closed before the job finishes (abort, `break`, `close()`). */
  cancelJob?: boolean;
  /** @defaultValue the client's transport ('sse') */
  transport?: StreamTransport;
}

export interface RunOptions extends SubmitOptions {
  /** Each piece of output text as it arrives. */
  onToken?: (text: string) => void;
  /** A new attempt restarted the output: drop what `onToken` gave so far. */
  onReset?: () => void;
  onProgress?: (progress: unknown) => void;
  /** Called once the job is submitted, before any output. */
  onSubmitted?: (job: Submitted) => void;
  /** Cancel the job on the server when `signal` aborts. @defaultValue false */
  cancelJob?: boolean;
  transport?: StreamTransport;
}

export type ListJobs = Partial<Omit<ListJobsQuery, 'cursor'>>;

async function cancelJob({ http }: ResourceContext, id: string, opts: CallOptions = {}): Promise<JobView> {
  return (await http.request<JobView>({ method: 'DELETE', path: `/v1/jobs/${encodeURIComponent(id)}`, signal: opts.signal })).data;
}

/** A job's events; with `cancelJob`, closing the stream early cancels the job. Shared by every resource whose calls start jobs. */
export function streamJob(ctx: ResourceContext, id: string, opts: JobStreamOptions = {}): EventStream<JobEvent> {
  return ctx.stream<JobEvent>(
    { path: `/v1/jobs/${encodeURIComponent(id)}/events`, room: `job:${id}`, events: Object.keys(jobEvents), isLast: (e) => e.event === 'finished' },
    opts,
    opts.cancelJob
      ? () => {
          // Fire and forget: a job that finished meanwhile answers 409, and there is nothing left to stop.
          void cancelJob(ctx, id).catch(() => {});
        }
      : undefined,
  );
}

/** What following a job to its end takes: the handlers of `run`, the signal, the transport. */
export type FollowOptions = Pick<RunOptions, 'onToken' | 'onReset' | 'onProgress' | 'signal' | 'cancelJob' | 'transport'>;

/** Streams a submitted job to its end: resolves with its result, rejects with a ParleyError if it fails, is cancelled, or `signal` aborts. */
export async function followJob(ctx: ResourceContext, id: string, opts: FollowOptions = {}): Promise<unknown> {
  const events = streamJob(ctx, id, { signal: opts.signal, cancelJob: opts.cancelJob ?? false, ...(opts.transport ? { transport: opts.transport } : {}) });
  for await (const e of events) {
    if (e.event === 'tokens') opts.onToken?.(e.data.text);
    else if (e.event === 'reset') opts.onReset?.();
    else if (e.event === 'progress') opts.onProgress?.(e.data.progress);
    else if (e.event === 'finished') {
      if (e.data.state === 'completed') return e.data.result;
      throw jobFailure(id, e.data.state as Extract<JobState, 'failed' | 'cancelled'>, e.data.error);
    }
  }
  throw abortError(opts.signal);
}

export function jobsResource(ctx: ResourceContext) {
  const { http } = ctx;

  const cancel = (id: string, opts: CallOptions = {}): Promise<JobView> => cancelJob(ctx, id, opts);

  /**
   * Submits a job of a public kind. `input` is typed by the kind. An Idempotency-Key goes with every
   * submission, so a retried submit (network failure, 503) never makes two jobs.
   */
  async function submit<K extends PublicJobKind>(kind: K, input: JobInput<K>, opts: SubmitOptions = {}): Promise<Submitted> {
    const key = opts.idempotencyKey ?? randomId();
    const { data, response } = await http.request<SubmittedJob>({
      method: 'POST',
      path: '/v1/jobs',
      idempotent: true,
      signal: opts.signal,
      headers: { 'idempotency-key': key },
      body: { kind, input, ...(opts.priority ? { priority: opts.priority } : {}) },
    });
    return { ...data, replayed: response.headers.get('idempotent-replayed') === 'true' };
  }

  const stream = (id: string, opts: JobStreamOptions = {}): EventStream<JobEvent> => streamJob(ctx, id, opts);

  return {
    submit,

    /** The job: state, progress, result or error, attempts, timings, usage. */
    async get(id: string, opts: CallOptions = {}): Promise<JobView> {
      return (await http.request<JobView>({ method: 'GET', path: `/v1/jobs/${encodeURIComponent(id)}`, signal: opts.signal })).data;
    },

    /** Your jobs, newest first, without their results (`get` one for that); iterate for every job across pages, or use `.pages()` / `.first()`. */
    list(query: ListJobs = {}, opts: CallOptions = {}): Paginated<JobSummary, JobList> {
      return paginate((cursor) =>
        http.request<JobList>({ method: 'GET', path: '/v1/jobs', query: { ...query, cursor }, signal: opts.signal }).then((r) => r.data),
      );
    },

    /** Cancels: a waiting job is removed, an active one is aborted where it runs (the model stops). */
    cancel,

    /** Runs a failed or cancelled job again, under the same id. */
    async retry(id: string, opts: CallOptions = {}): Promise<JobView> {
      return (await http.request<JobView>({ method: 'POST', path: `/v1/jobs/${encodeURIComponent(id)}/retry`, signal: opts.signal })).data;
    },

    /**
     * The job's live events (tokens, progress, reset, finished) as an async iterable, resumed across
     * dropped connections with no gap or duplicate; it ends after `finished`.
     */
    stream,

    /** Submits, streams and resolves with the typed result; rejects with a ParleyError if the job fails or is cancelled. */
    async run<K extends PublicJobKind>(kind: K, input: JobInput<K>, opts: RunOptions = {}): Promise<JobResult<K>> {
      const job = await submit(kind, input, opts);
      opts.onSubmitted?.(job);
      return (await followJob(ctx, job.id, opts)) as JobResult<K>;
    },
  };
}

export type JobsResource = ReturnType<typeof jobsResource>;
