/**
 * The deep readiness probe: a `system.ping` job, owned by the built-in system
 * user, through the whole path (record → queue → worker → record), waited
 * for up to `timeoutMs`.
 */
import { randomUUID } from 'node:crypto';
import type { JobStore } from '../../platform/jobs/index.ts';
import { enqueue, type Queues } from '../../platform/jobs/index.ts';
import { systemPing } from '../../shared/index.ts';
import { SYSTEM_USER_ID } from '../../platform/jobs/index.ts';

export async function deepProbe(deps: { store: JobStore; queues: Queues }, timeoutMs = 5000): Promise<{ ok: boolean; ms: number; detail?: string }> {
  const t0 = performance.now();
  const id = randomUUID();
  const input = systemPing.input.parse({ echo: 'readyz' });
  await deps.store.insert({ id, kind: systemPing.kind, v: systemPing.v, queue: systemPing.queue, ownerId: SYSTEM_USER_ID, priority: 'interactive', maxAttempts: 1, input });
  await enqueue(deps.queues, { ...systemPing, defaults: { ...systemPing.defaults, attempts: 1 } }, id, { kind: systemPing.kind, v: systemPing.v, input, ownerId: SYSTEM_USER_ID, priority: 'interactive' });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const row = await deps.store.get(id);
    if (row?.state === 'completed') return { ok: true, ms: Math.round(performance.now() - t0) };
    if (row?.state === 'failed' || row?.state === 'cancelled') return { ok: false, ms: Math.round(performance.now() - t0), detail: `probe job ${row.state}: ${row.error_message ?? ''}` };
    await new Promise((r) => setTimeout(r, 20));
  }
  return { ok: false, ms: Math.round(performance.now() - t0), detail: `probe job ${id} not done within ${timeoutMs} ms (are workers running?)` };
}
