/** Liveness and readiness: what /healthz and /readyz answer. */
import { z } from 'zod';

export const Liveness = z.object({ status: z.literal('ok') });

/** One dependency's check. Anonymous callers and callers without `metrics:read` see only `ok`. */
export const ReadinessCheck = z.object({ ok: z.boolean(), ms: z.number().optional(), detail: z.string().optional() });
export type ReadinessCheck = z.infer<typeof ReadinessCheck>;

export const Readiness = z.object({
  status: z.enum(['ready', 'degraded']),
  /** Redis, Postgres and Ollama; `pipeline` too when a deep probe ran. */
  checks: z.record(z.string(), ReadinessCheck),
  ollamaHosts: z.array(z.object({ host: z.string(), up: z.boolean() })).optional(),
  models: z.array(z.object({ model: z.string(), installed: z.boolean(), loaded: z.boolean(), loadedOn: z.array(z.string()) })).optional(),
});
export type Readiness = z.infer<typeof Readiness>;

export const ReadinessQuery = z.object({ deep: z.enum(['0', '1', 'true', 'false']).optional() });
