/**
 * The deep readiness probe: a `system.ping` job, owned by the built-in system
 * user, through the whole path (record → queue → worker → record), waited
 * for up to `timeoutMs`.
 *
 * It leaves nothing behind: the probe is marked (idempotency key
 * `readyz-probe:<uuid>`), cancelled if no worker took it in time, and then
 * its record, queue entry and stream are deleted; probes a dead process left
 * are swept by the next one. It runs at most once per `intervalMs` over every
 * API process (a Redis key set with NX and that TTL): sooner is a refusal
 * with the seconds to wait.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { SYSTEM_USER_ID, type JobLifecycle } from '../../platform/jobs/index.ts';
import { systemPing } from '../../shared/index.ts';

export interface ProbeDeps {
  jobs: JobLifecycle;
  redis: Redis;
  /** keys(prefix).readyzDeepSlot */
  slotKey: string;
  intervalMs: number;
  /** @defaultValue 5000 ms */
  timeoutMs?: number;
}

export type ProbeOutcome = { ok: boolean; ms: number; detail?: string } | { retryAfterS: number };

export async function deepProbe(deps: ProbeDeps): Promise<ProbeOutcome> {
  const free = await deps.redis.set(deps.slotKey, '1', 'PX', deps.intervalMs, 'NX');
  if (free !== 'OK') {
    const ttl = await deps.redis.pttl(deps.slotKey);
    return { retryAfterS: Math.max(1, Math.ceil((ttl > 0 ? ttl : deps.intervalMs) / 1000)) };
  }
  const timeoutMs = deps.timeoutMs ?? 5000;
  const t0 = performance.now();
  const input = systemPing.input.parse({ echo: 'readyz' });
  const { row } = await deps.jobs.accept({
    def: systemPing,
    input,
    ownerId: SYSTEM_USER_ID,
    priority: 'interactive',
    maxAttempts: 1,
    idempotencyKey: `readyz-probe:${randomUUID()}`,
  });
  try {
    const finished = await deps.jobs.waitFinished(row.id, timeoutMs);
    const now = await deps.jobs.get(row.id);
    const ms = Math.round(performance.now() - t0);
    if (now?.state === 'completed') return { ok: true, ms };
    if (finished && now) return { ok: false, ms, detail: `probe job ${now.state}: ${now.error_message ?? ''}` };
    // Nobody took it: take it back before it is deleted, so no worker runs it later.
    await deps.jobs.cancel(row.id, { waitMs: 1000 }).catch(() => {});
    return { ok: false, ms, detail: `probe job not done within ${timeoutMs} ms (are workers running?)` };
  } finally {
    await deps.jobs.discardProbe(row.id);
  }
}
