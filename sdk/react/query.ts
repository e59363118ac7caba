/** A request tied to a component: re-run when its key changes, aborted on unmount, refreshable. */
import { useCallback, useEffect, useRef, useState } from 'react';
import type { ParleyError } from '../errors.ts';

export interface QueryState<T> {
  data: T | undefined;
  error: ParleyError | undefined;
  loading: boolean;
  /** Runs the request again now. */
  refresh: () => void;
}

export function useQuery<T>(
  key: string | null,
  run: (signal: AbortSignal) => Promise<T>,
  opts: { pollMs?: number; keepPolling?: (data: T) => boolean } = {},
): QueryState<T> {
  const [state, setState] = useState<{ data: T | undefined; error: ParleyError | undefined; loading: boolean }>({
    data: undefined,
    error: undefined,
    loading: key !== null,
  });
  const [tick, setTick] = useState(0);
  const runRef = useRef(run);
  runRef.current = run;
  const { pollMs, keepPolling } = opts;

  useEffect(() => {
    if (key === null) return;
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = () => {
      setState((s) => ({ ...s, loading: true }));
      runRef.current(controller.signal).then(
        (data) => {
          if (controller.signal.aborted) return;
          setState({ data, error: undefined, loading: false });
          if (pollMs !== undefined && (keepPolling?.(data) ?? true)) timer = setTimeout(load, pollMs);
        },
        (error: ParleyError) => {
          if (controller.signal.aborted) return;
          setState((s) => ({ ...s, error, loading: false }));
        },
      );
    };
    load();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [key, tick, pollMs, keepPolling]);

  const refresh = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, refresh };
}
