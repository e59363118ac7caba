/**
 * The deep readiness probe: a `system.ping` job, owned by the built-in system
 * user, through the whole path (record → queue → worker → record), waited
 * for up to `timeoutMs`.
 */
import { SYSTEM_USER_ID, type JobLifecycle } from '../../platform/jobs/index.ts';
import { systemPing } from '../../shared/index.ts';

export async function deepProbe(deps: { jobs: JobLifecycle }, timeoutMs = 5000): Promise<{ ok: boolean; ms: number; detail?: string }> {
  const t0 = performance.now();
  const input = systemPing.input.parse({ echo: 'readyz' });
  const { row } = await deps.jobs.accept({ def: systemPing, input, ownerId: SYSTEM_USER_ID, priority: 'interactive', maxAttempts: 1 });
  const finished = await deps.jobs.waitFinished(row.id, timeoutMs);
  const now = await deps.jobs.get(row.id);
  const ms = Math.round(performance.now() - t0);
  if (now?.state === 'completed') return { ok: true, ms };
  if (finished && now) return { ok: false, ms, detail: `probe job ${now.state}: ${now.error_message ?? ''}` };
  return { ok: false, ms, detail: `probe job ${row.id} not done within ${timeoutMs} ms (are workers running?)` };
}
