import { z } from 'zod';
import { defineJob } from './define.ts';

export const SystemPingInput = z
  .object({
    echo: z.string().max(1024).optional(),
    /** Holds the job active this long; used by probes that need a job in flight. */
    holdMs: z.number().int().min(0).max(120_000).default(0),
  })
  .strict();
export type SystemPingInput = z.infer<typeof SystemPingInput>;

export const SystemPingResult = z.object({
  echo: z.string().optional(),
  worker: z.string(),
  attempt: z.number().int(),
  at: z.string(),
});
export type SystemPingResult = z.infer<typeof SystemPingResult>;

export const systemPing = defineJob({
  kind: 'system.ping',
  v: 1,
  queue: 'system',
  input: SystemPingInput,
  result: SystemPingResult,
  progress: z.object({ heldMs: z.number() }),
  defaults: { priority: 'normal', attempts: 3, streamRetentionS: 300, backoff: { baseMs: 200, maxMs: 5_000 } },
  metered: false,
  summary: 'A trivial end-to-end probe through queue, worker and bookkeeping.',
});
