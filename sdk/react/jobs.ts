import { useCallback, useEffect, useRef, useState } from 'react';
import { isTerminal, type JobError, type JobKind, type JobState, type JobView, type PublicJobKind, type Usage } from '../../shared/index.ts';
import { isParleyError, ParleyError } from '../errors.ts';
import type { Submitted, SubmitOptions } from '../resources/jobs.ts';
import type { JobInput, JobResult, StreamTransport } from '../types.ts';
import { useParleyClient } from './provider.tsx';
import { useQuery } from './query.ts';

/** A job's record, polled until it is terminal. @param id null: nothing to load yet */
export function useJob(id: string | null, opts: { pollMs?: number } = {}) {
  const client = useParleyClient();
  const q = useQuery<JobView>(id, (signal) => client.jobs.get(id!, { signal }), { pollMs: opts.pollMs ?? 1000, keepPolling: keepPollingJob });
  return { job: q.data, error: q.error, loading: q.loading, refresh: q.refresh };
}
const keepPollingJob = (j: JobView) => !isTerminal(j.state);

export interface JobStreamState<R = unknown> {
  /** The output so far (a `reset` clears it: a new attempt restarts the output). */
  text: string;
  /** `connecting` until the first event, `streaming` until `finished`, then `done`; `error` if the stream failed. */
  status: 'idle' | 'connecting' | 'streaming' | 'done' | 'error';
  /** The job's state once finished. */
  state: JobState | undefined;
  usage: Usage | null | undefined;
  result: R | undefined;
  /** Why the job failed (its JobError) or why the stream failed (a ParleyError). */
  error: JobError | ParleyError | undefined;
  progress: unknown;
  /** The last seq seen, and how often the stream reconnected. */
  lastSeq: number;
  reconnects: number;
}

const idle: JobStreamState<never> = {
  text: '',
  status: 'idle',
  state: undefined,
  usage: undefined,
  result: undefined,
  error: undefined,
  progress: undefined,
  lastSeq: 0,
  reconnects: 0,
};

/**
 * A job's live output: accumulated text, state, usage and result. Resumes across dropped connections;
 * closes its connection when the id changes or the component unmounts.
 */
export function useJobStream<K extends JobKind = JobKind>(id: string | null, opts: { transport?: StreamTransport } = {}): JobStreamState<JobResult<K>> {
  const client = useParleyClient();
  const [s, set] = useState<JobStreamState<JobResult<K>>>(idle);
  const { transport } = opts;
  useEffect(() => {
    if (!id) {
      set(idle);
      return;
    }
    const controller = new AbortController();
    set({ ...idle, status: 'connecting' });
    const stream = client.jobs.stream(id, {
      signal: controller.signal,
      ...(transport ? { transport } : {}),
      onReconnect: () => set((p) => ({ ...p, reconnects: p.reconnects + 1 })),
    });
    void (async () => {
      try {
        for await (const e of stream) {
          set((p) => {
            const n = { ...p, lastSeq: e.data.seq, status: 'streaming' as const };
            switch (e.event) {
              case 'tokens':
                return { ...n, text: p.text + e.data.text };
              case 'reset':
                return { ...n, text: '' };
              case 'progress':
                return { ...n, progress: e.data.progress };
              case 'finished':
                return {
                  ...n,
                  status: 'done',
                  state: e.data.state,
                  usage: e.data.usage,
                  result: e.data.result as JobResult<K> | undefined,
                  error: e.data.error,
                };
            }
          });
        }
      } catch (err) {
        if (!controller.signal.aborted)
          set((p) => ({
            ...p,
            status: 'error',
            error: isParleyError(err) ? err : new ParleyError({ code: 'NETWORK_ERROR', status: 0, detail: String(err), cause: err }),
          }));
      }
    })();
    return () => controller.abort();
  }, [client, id, transport]);
  return s;
}

/** Submits jobs from a component: `submit(kind, input)` resolves to the job; `pending`, `job` and `error` follow the last call. */
export function useSubmitJob() {
  const client = useParleyClient();
  const [s, set] = useState<{ job: Submitted | undefined; error: ParleyError | undefined; pending: boolean }>({
    job: undefined,
    error: undefined,
    pending: false,
  });
  const inFlight = useRef(new Set<AbortController>());
  useEffect(() => {
    const pending = inFlight.current;
    return () => pending.forEach((c) => c.abort());
  }, []);
  const submit = useCallback(
    async <K extends PublicJobKind>(kind: K, input: JobInput<K>, opts: Omit<SubmitOptions, 'signal'> = {}): Promise<Submitted> => {
      const controller = new AbortController();
      inFlight.current.add(controller);
      set((p) => ({ ...p, pending: true, error: undefined }));
      try {
        const job = await client.jobs.submit(kind, input, { ...opts, signal: controller.signal });
        if (!controller.signal.aborted) set({ job, error: undefined, pending: false });
        return job;
      } catch (err) {
        if (!controller.signal.aborted) set((p) => ({ ...p, error: err as ParleyError, pending: false }));
        throw err;
      } finally {
        inFlight.current.delete(controller);
      }
    },
    [client],
  );
  const reset = useCallback(() => set({ job: undefined, error: undefined, pending: false }), []);
  return { submit, reset, ...s };
}
