/**
 * GET /v1/jobs/:id/events — Server-Sent Events from the shared catalog.
 * Frames: `id: <seq>`, `event: <name>`, `data: <json>`. Resumes after the
 * `Last-Event-ID` header (or `?lastEventId=`). Ends after `finished`.
 * A comment line every 15 s keeps proxies from closing an idle stream.
 * While open, the stream re-checks its credential every second (as the
 * Socket.IO server does): a revoked session or key, a disabled account or a
 * changed role ends it with an `auth_error` event.
 *
 * Bounds: each open stream holds one of its user's connection leases
 * (PARLEY_MAX_CONNECTIONS_PER_USER, shared with Socket.IO; one more is 429
 * RATE_LIMITED with Retry-After), and a reader that leaves more than
 * PARLEY_SLOW_READER_MAX_BYTES unread is cut off (it resumes with
 * Last-Event-ID). Text in the path, query or Last-Event-ID that Postgres
 * could not store (NUL, unpaired surrogates) is a 400 naming the field, as
 * on every declared route.
 */
import type { Request, Response } from 'express';
import { z } from 'zod';
import { AppError } from '../domain/errors.ts';
import { authorize, type Authenticate } from '../http/mount.ts';
import { type Actor, type Permission } from '../auth/permissions.ts';
import { EventStreamQuery, LastEventId, type JobEvent } from '../../shared/index.ts';
import { unstorableText } from '../domain/field-errors.ts';
import type { ConnectionRegistry } from './connections.ts';
import { watchJob, type WatchDeps } from './watch.ts';

/** What every event stream hears: open/close for metrics, and how to re-check a credential. */
export interface StreamHooks {
  onOpen?: () => void;
  onClose?: () => void;
  /** False once the actor's session or key no longer stands (revoked, disabled, role changed). */
  stillValid?: (actor: Actor) => Promise<boolean>;
  /** @defaultValue 1000 ms */
  revalidateMs?: number;
  /** Per-user leases on live connections; without it, streams are not counted. */
  connections?: ConnectionRegistry;
  /** Unsent bytes after which a reader is cut off. @defaultValue 1 MiB */
  slowReaderMaxBytes?: number;
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
const streamHeaders = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
  Connection: 'keep-alive',
  'X-Accel-Buffering': 'no',
};

export function eventStreamHandler<E extends { event: string; data: { seq: number } }>(
  hooks: StreamHooks,
  authenticate: Authenticate,
  /** `watch` resolves to null when the stream already ended at or before `afterSeq`: the answer is then 204 No Content. */
  opts: {
    permission: Permission;
    watch: (actor: Actor, id: string, afterSeq: number, fn: (e: E) => void) => Promise<(() => void) | null>;
    isLast: (e: E) => boolean;
  },
) {
  return async (req: Request, res: Response) => {
    const actor = authorize(await authenticate(req, res), opts.permission);
    // The only representation is the stream: a client that rules it out (Accept: application/json) is told so, not streamed at.
    if (req.get('accept') !== undefined && !req.accepts('text/event-stream'))
      throw new AppError('NOT_ACCEPTABLE', { detail: 'This route answers only with text/event-stream; send Accept: text/event-stream (or leave Accept out)' });
    // An empty Last-Event-ID is no id at all (the EventSource spec: start from the beginning).
    const rawHeader = req.get('last-event-id');
    const lastHeader = rawHeader === '' ? undefined : rawHeader;
    const unstorable = [
      ...unstorableText(req.params, ['params']),
      ...unstorableText(req.query, ['query']),
      ...(lastHeader === undefined ? [] : unstorableText(lastHeader, ['headers', 'last-event-id'])),
    ];
    if (unstorable.length) throw new AppError('VALIDATION_FAILED', { detail: 'The request holds text that cannot be stored', errors: unstorable });
    const id = z.uuid().toLowerCase().safeParse(req.params.id);
    if (!id.success) throw new AppError('VALIDATION_FAILED', { errors: [{ path: 'params.id', message: 'must be a UUID' }] });
    // The same rule the OpenAPI document states (shared/events.ts): digits only, at most 15.
    const query = EventStreamQuery.safeParse({ lastEventId: req.query.lastEventId });
    if (!query.success) throw new AppError('VALIDATION_FAILED', { errors: [{ path: 'query.lastEventId', message: 'must be a sequence number (digits)' }] });
    const header = lastHeader === undefined ? undefined : LastEventId.safeParse(lastHeader);
    if (header && !header.success)
      throw new AppError('VALIDATION_FAILED', { errors: [{ path: 'headers.last-event-id', message: 'must be a sequence number (digits)' }] });
    const last = { data: Number(header?.data ?? query.data.lastEventId ?? 0) };

    if (req.method === 'HEAD') {
      // What a GET would start with, and no stream: a HEAD must end (RFC 9110 §9.3.2) and hold no connection slot.
      const stop = await opts.watch(actor, id.data, last.data, () => {});
      if (stop === null) return void res.status(204).end();
      stop();
      res.status(200).set(streamHeaders).end();
      return;
    }

    const lease = hooks.connections ? await hooks.connections.acquire(actor.userId) : undefined;
    if (hooks.connections && !lease) {
      throw new AppError('RATE_LIMITED', {
        detail: 'Too many live connections (event streams and sockets) for this user: close one first',
        headers: { 'Retry-After': '5' },
      });
    }
    const maxUnsent = hooks.slowReaderMaxBytes ?? 1_048_576;
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
      lease?.release();
      if (opened) {
        hooks.onClose?.();
        res.end();
      }
    };
    const send = (e: E) => {
      if (closed) return;
      res.write(`id: ${e.data.seq}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`);
      if (opts.isLast(e)) return close();
      // A reader that does not keep up is cut off, not buffered for without bound; it resumes with Last-Event-ID.
      if (res.writableLength > maxUnsent) {
        close();
        res.destroy();
      }
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
        lease?.release();
        res.status(204).end();
        return;
      }
      if (closed) return stop();
      unsubscribe = stop;
      res.status(200).set(streamHeaders);
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
              res.write(
                `event: auth_error\ndata: ${JSON.stringify({ code: 'SESSION_REVOKED', message: 'the session or key was revoked, or the account changed' })}\n\n`,
              );
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
      lease?.release();
      throw err;
    }
  };
}
