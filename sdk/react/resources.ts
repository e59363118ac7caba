import type { UsageQuery } from '../../shared/index.ts';
import { useParleyClient } from './provider.tsx';
import { useQuery } from './query.ts';

/** Installed models. */
export function useModels() {
  const client = useParleyClient();
  const q = useQuery('models', (signal) => client.models.list({ signal }));
  return { models: q.data, error: q.error, loading: q.loading, refresh: q.refresh };
}

/** Your token usage and budgets; `pollMs` refreshes it on a timer. */
export function useUsage(query: UsageQuery = {}, opts: { pollMs?: number } = {}) {
  const client = useParleyClient();
  const q = useQuery(
    `usage:${JSON.stringify(query)}`,
    (signal) => client.usage.get(query, { signal }),
    opts.pollMs === undefined ? {} : { pollMs: opts.pollMs },
  );
  return { usage: q.data, error: q.error, loading: q.loading, refresh: q.refresh };
}
