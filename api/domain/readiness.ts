/**
 * Readiness: Redis, Postgres and Ollama each checked within a second, and for
 * operators on request a system.ping run end to end (api/domain/probe.ts).
 * Anyone may learn whether the service is up; what is down and why (internal
 * URLs, raw errors, hosts, models) is for callers with `metrics:read`.
 */
import type { Redis } from 'ioredis';
import type { Readiness, ReadinessCheck } from '../../shared/index.ts';
import { pingPostgres, type Db } from '../../platform/connections/index.ts';
import type { OllamaClient } from '../../platform/ollama/index.ts';
import { timedCheck } from '../../platform/observability/index.ts';
import type { ProbeOutcome } from './probe.ts';
import { AppError } from './errors.ts';

export interface ReadinessDeps {
  redis: Redis;
  db: Db;
  ollama: OllamaClient;
  /** Submits a system.ping and waits for it; the deep check, for operators. */
  deepProbe?: () => Promise<ProbeOutcome>;
  /** Extra detail (per-host reach, per-model availability), for operators. */
  extraReadiness?: () => Promise<Record<string, unknown>>;
}

/**
 * `deep` runs the pipeline check (UNAUTHENTICATED without an actor, FORBIDDEN
 * without `metrics:read`, RATE_LIMITED within the probe's interval); `detailed`
 * says whether the caller may see timings, errors, hosts and models.
 */
export async function checkReadiness(
  deps: ReadinessDeps,
  opts: { deep: boolean; detailed: boolean; authenticated: boolean },
): Promise<{ ok: boolean; body: Readiness }> {
  if (opts.deep && !opts.authenticated) throw new AppError('UNAUTHENTICATED', { detail: 'Deep readiness is for operators: send their credentials' });
  if (opts.deep && !opts.detailed) throw new AppError('FORBIDDEN', { detail: 'Deep readiness needs the metrics:read permission' });
  const [redis, postgres, ollama] = await Promise.all([
    timedCheck(() => deps.redis.ping(), 1000),
    timedCheck(() => pingPostgres(deps.db), 1000),
    timedCheck(() => deps.ollama.version(), 1000),
  ]);
  const checks: Record<string, ReadinessCheck> = { redis, postgres, ollama };
  if (opts.deep && deps.deepProbe) {
    const probe = await deps.deepProbe();
    if ('retryAfterS' in probe)
      throw new AppError('RATE_LIMITED', {
        detail: `A deep probe ran moments ago; the next may run in ${probe.retryAfterS} s`,
        headers: { 'Retry-After': String(probe.retryAfterS) },
      });
    checks.pipeline = probe;
  }
  const ok = Object.values(checks).every((c) => c.ok);
  const status = ok ? 'ready' : 'degraded';
  if (!opts.detailed) return { ok, body: { status, checks: Object.fromEntries(Object.entries(checks).map(([k, c]) => [k, { ok: c.ok }])) } };
  const extra = deps.extraReadiness ? await deps.extraReadiness().catch(() => ({})) : {};
  return { ok, body: { status, checks, ...extra } };
}
