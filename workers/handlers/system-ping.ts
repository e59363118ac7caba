import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { systemPing } from '../../shared/index.ts';
import type { Handler } from '../runtime/handler.ts';

export function systemPingHandler(): Handler<typeof systemPing> {
  return async (input, ctx) => {
    if (input.holdMs > 0) {
      const step = Math.min(250, input.holdMs);
      for (let held = 0; held < input.holdMs; held += step) {
        await sleep(Math.min(step, input.holdMs - held), undefined, { signal: ctx.signal });
        ctx.progress({ heldMs: held + step });
      }
    }
    return { echo: input.echo, worker: `${hostname()}:${process.pid}`, attempt: ctx.attempt, at: new Date().toISOString() };
  };
}
