/**
 * GET /v1/jobs/:id/events — Server-Sent Events from the shared catalog.
 * Frames: `id: <seq>`, `event: <name>`, `data: <json>`. Resumes after the
 * `Last-Event-ID` header (or `?lastEventId=`). Ends after `finished`.
 * A comment line every 15 s keeps proxies from closing an idle stream.
 * While open, the stream re-checks its credential every second (as the
 * Socket.IO server does): a revoked session or key, a disabled account or a
 * changed role ends it with an `auth_error` event.
 */
import type { Request, Response } from 'express';
import { z } from 'zod';
import { AppError } from '../http/app-error.ts';
import type { Authenticate } from '../http/mount.ts';
import { can, type Actor, type Permission } from '../auth/permissions.ts';
import type { JobEvent } from '../../shared/index.ts';
import { watchJob, type WatchDeps } from './watch.ts';

const Seq = z.coerce.number().int().min(0);

/** What every event stream hears: open/close for metrics, and how to re-check a credential. */
export interface StreamHooks {
  onOpen?: () => void;
  onClose?: () => void;
  /** False once the actor's session or key no longer stands (revoked, disabled, role changed). */
  stillValid?: (actor: Actor) => Promise<boolean>;
  /** @defaultValue 1000 ms */
  revalidateMs?: number;
}

export function sseHandler(deps: WatchDeps & StreamHooks, authenticate: Authenticate) {
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
  hooks: StreamHooks,
  authenticate: Authenticate,
  /** `watch` resolves to null when the stream already ended at or before `afterSeq`: the answer is then 204 No Content. */
  opts: { permission: Permission; watch: (actor: Actor, id: string, afterSeq: number, fn: (e: E) => void) => Promise<(() => void) | null>; isLast: (e: E) => boolean },
) {
  return async (req: Request, res: Response) => {
    const actor = await authenticate(req, res);
    if (!actor) throw new AppError('UNAUTHENTICATED', { detail: 'Send "Authorization: Bearer <access token>" (from POST /v1/auth/token) or an API key' });
    if (!can(actor, opts.permission)) throw new AppError('FORBIDDEN');
    const id = z.uuid().safeParse(req.params.id);
    if (!id.success) throw new AppError('VALIDATION_FAILED', { errors: [{ path: 'params.id', message: 'must be a UUID' }] });
    const rawLast = req.get('last-event-id') ?? (typeof req.query.lastEventId === 'string' ? req.query.lastEventId : undefined);
    const last = rawLast === undefined ? { success: true as const, data: 0 } : Seq.safeParse(rawLast);
    if (!last.success) throw new AppError('VALIDATION_FAILED', { errors: [{ path: 'headers.last-event-id', message: 'must be a sequence number' }] });

    let closed = false;
    let opened = false;
    let unsubscribe: () => void = () => {};
    let revalidate: NodeJS.Timeout | undefined;
    const close = () => {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      clearInterval(revalidate);
      unsubscribe();
      if (opened) {
        hooks.onClose?.();
        res.end();
      }
    };
    const send = (e: E) => {
      if (closed) return;
      res.write(`id: ${e.data.seq}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`);
      if (opts.isLast(e)) close();
    };
    // Listening from the start: a client that leaves while the subscription is being set up is noticed.
    // (The response's close: it fires when the connection goes, whatever happened to the request body.)
    res.on('close', close);
    const heartbeat = setInterval(() => !closed && res.write(': keep-alive\n\n'), 15_000);
    try {
      const buffered: E[] = [];
      let headersSent = false;
      const stop = await opts.watch(actor, id.data, last.data, (e) => (headersSent ? send(e) : buffered.push(e)));
      if (stop === null) {
        // Resumed after the last event: nothing will ever follow. 204 ends EventSource's reconnect loop.
        clearInterval(heartbeat);
        closed = true;
        res.status(204).end();
        return;
      }
      if (closed) return stop();
      unsubscribe = stop;
      res.status(200).set({ 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache, no-transform', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
      res.flushHeaders();
      res.write('retry: 1000\n\n');
      headersSent = true;
      opened = true;
      hooks.onOpen?.();
      // The recheck first: a buffered last event closes the stream, and with it this timer.
      if (hooks.stillValid) {
        const check = hooks.stillValid;
        revalidate = setInterval(() => {
          check(actor).then(
            (ok) => {
              if (ok || closed) return;
              res.write(`event: auth_error\ndata: ${JSON.stringify({ code: 'SESSION_REVOKED', message: 'the session or key was revoked, or the account changed' })}\n\n`);
              close();
            },
            () => {},
          );
        }, hooks.revalidateMs ?? 1000);
      }
      for (const e of buffered) send(e);
    } catch (err) {
      clearInterval(heartbeat);
      closed = true;
      throw err;
    }
  };
}
