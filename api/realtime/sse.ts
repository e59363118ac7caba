/**
 * GET /v1/jobs/:id/events — Server-Sent Events from the shared catalog.
 * Frames: `id: <seq>`, `event: <name>`, `data: <json>`. Resumes after the
 * `Last-Event-ID` header (or `?lastEventId=`). Ends after `finished`.
 * A comment line every 15 s keeps proxies from closing an idle stream.
 */
import type { Request, Response } from 'express';
import { z } from 'zod';
import { AppError } from '../http/app-error.ts';
import type { Authenticate } from '../http/mount.ts';
import { can, type Actor, type Permission } from '../auth/permissions.ts';
import type { JobEvent } from '../../shared/index.ts';
import { watchJob, type WatchDeps } from './watch.ts';

const Seq = z.coerce.number().int().min(0);

export function sseHandler(deps: WatchDeps & { onOpen?: () => void; onClose?: () => void }, authenticate: Authenticate) {
  return eventStreamHandler<JobEvent>(deps, authenticate, {
    permission: 'jobs:read',
    watch: (actor, id, afterSeq, fn) => watchJob(deps, actor, id, afterSeq, fn),
    isLast: (e) => e.event === 'finished',
  });
}

/**
 * The SSE mechanics for any resource with a seq-numbered event stream (jobs,
 * discussion rooms): authenticate, check the permission, parse the id and
 * Last-Event-ID, subscribe before the headers go out (so a 404 is still a
 * problem+json answer), then relay until `isLast` or the client leaves.
 */
export function eventStreamHandler<E extends { event: string; data: { seq: number } }>(
  hooks: { onOpen?: () => void; onClose?: () => void },
  authenticate: Authenticate,
  opts: { permission: Permission; watch: (actor: Actor, id: string, afterSeq: number, fn: (e: E) => void) => Promise<() => void>; isLast: (e: E) => boolean },
) {
  return async (req: Request, res: Response) => {
    const actor = await authenticate(req, res);
    if (!actor) throw new AppError('UNAUTHENTICATED');
    if (!can(actor, opts.permission)) throw new AppError('FORBIDDEN');
    const id = z.uuid().safeParse(req.params.id);
    if (!id.success) throw new AppError('VALIDATION_FAILED', { errors: [{ path: 'params.id', message: 'must be a UUID' }] });
    const rawLast = req.get('last-event-id') ?? (typeof req.query.lastEventId === 'string' ? req.query.lastEventId : undefined);
    const last = rawLast === undefined ? { success: true as const, data: 0 } : Seq.safeParse(rawLast);
    if (!last.success) throw new AppError('VALIDATION_FAILED', { errors: [{ path: 'headers.last-event-id', message: 'must be a sequence number' }] });

    let closed = false;
    let unsubscribe: () => void = () => {};
    const close = () => {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      unsubscribe();
      hooks.onClose?.();
      res.end();
    };
    const send = (e: E) => {
      if (closed) return;
      res.write(`id: ${e.data.seq}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`);
      if (opts.isLast(e)) close();
    };
    const heartbeat = setInterval(() => !closed && res.write(': keep-alive\n\n'), 15_000);
    try {
      const buffered: E[] = [];
      let headersSent = false;
      unsubscribe = await opts.watch(actor, id.data, last.data, (e) => (headersSent ? send(e) : buffered.push(e)));
      res.status(200).set({ 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache, no-transform', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
      res.flushHeaders();
      res.write('retry: 1000\n\n');
      headersSent = true;
      hooks.onOpen?.();
      for (const e of buffered) send(e);
    } catch (err) {
      clearInterval(heartbeat);
      closed = true;
      throw err;
    }
    req.on('close', close);
  };
}
