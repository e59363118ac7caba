/**
 * Denials as audit events that an attack cannot flood: 401, 403 and 429
 * answers on the auth and admin routes and the queue board become
 * `auth.denied` rows, aggregated per process in fixed windows.
 *
 * A denial's key is (status, method, path with ids masked, client IP, actor).
 * - The first denial of a key in a window is written at once (outcome
 *   `denied`, details `{ status, code, method, path, count: 1 }`), so an
 *   operator sees an attack begin.
 * - Repeats only count. When the window closes, each key that repeated gets
 *   one more row with `count` = the repeats and `aggregated: true`.
 * - At most `maxKeys` keys are tracked per window; denials beyond them fall
 *   into one overflow row per window (`path: "*"`, counts by status).
 *
 * So one process writes at most 2 × maxKeys + 1 rows per window whatever the
 * request rate, and every denial is counted in some row. Each denial also
 * reaches `onDenial` (the Prometheus counter), unaggregated.
 */
import type { RequestHandler } from 'express';
import type { Audit } from './audit.ts';
import type { Actor } from './permissions.ts';

export interface Denial {
  status: number;
  /** Where: token (the token endpoint), auth, admin or board. */
  family: string;
  code?: string;
  method: string;
  path: string;
  ip?: string;
  userAgent?: string;
  actorId?: string;
  actorName?: string;
}

interface Tally {
  first: Denial;
  count: number;
}

const uuidish = /[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}/gi;

/** The path as recorded: no query, ids masked, bounded. */
export function maskedPath(originalUrl: string): string {
  return (originalUrl.split('?')[0] ?? '').replace(uuidish, ':id').slice(0, 200);
}

export function createDenialAudit(deps: { audit: Audit; windowMs: number; maxKeys: number; onDenial?: (d: Denial) => void }) {
  let tallies = new Map<string, Tally>();
  let overflow = { count: 0, byStatus: {} as Record<string, number> };
  let windowStart = new Date();
  const pending = new Set<Promise<void>>();
  const write = (p: Promise<void>) => {
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };
  const row = (d: Denial, details: Record<string, unknown>) =>
    deps.audit({
      action: 'auth.denied',
      outcome: 'denied',
      actorId: d.actorId ?? null,
      actorName: d.actorName ?? null,
      ip: d.ip,
      userAgent: d.userAgent,
      targetType: 'route',
      targetId: `${d.method} ${d.path}`,
      details: { status: d.status, code: d.code, family: d.family, method: d.method, path: d.path, ...details },
    });

  async function flush(): Promise<void> {
    const closing = tallies;
    const spilled = overflow;
    const from = windowStart;
    tallies = new Map();
    overflow = { count: 0, byStatus: {} };
    windowStart = new Date();
    const window = { from: from.toISOString(), to: windowStart.toISOString() };
    for (const t of closing.values()) if (t.count > 1) write(row(t.first, { count: t.count - 1, aggregated: true, window }));
    if (spilled.count > 0) {
      write(
        deps.audit({
          action: 'auth.denied',
          outcome: 'denied',
          targetType: 'route',
          targetId: '*',
          details: { path: '*', count: spilled.count, byStatus: spilled.byStatus, aggregated: true, overflow: true, window },
        }),
      );
    }
    await Promise.all([...pending]);
  }

  const timer = setInterval(() => void flush(), deps.windowMs);
  timer.unref();

  return {
    record(d: Denial): void {
      deps.onDenial?.(d);
      const key = [d.status, d.method, d.path, d.ip ?? '', d.actorId ?? ''].join('|');
      const tally = tallies.get(key);
      if (tally) {
        tally.count += 1;
      } else if (tallies.size < deps.maxKeys) {
        tallies.set(key, { first: d, count: 1 });
        write(row(d, { count: 1 }));
      } else {
        overflow.count += 1;
        overflow.byStatus[d.status] = (overflow.byStatus[d.status] ?? 0) + 1;
      }
    },

    /** Closes the window now: writes the aggregated rows and waits for every pending write. */
    flush,

    async stop(): Promise<void> {
      clearInterval(timer);
      await flush();
    },
  };
}

export type DenialAudit = ReturnType<typeof createDenialAudit>;

/** Where denials are audited: mount `denialRecorder` on each. */
export const auditedSurfaces = ['/v1/auth', '/v1/admin', '/admin/queues'] as const;

/** token (the token endpoint), auth, admin or board: a small fixed set, fit for a metric label. */
export function familyOf(path: string): string {
  if (path.startsWith('/v1/auth/token')) return 'token';
  if (path.startsWith('/v1/auth')) return 'auth';
  if (path.startsWith('/admin/queues')) return 'board';
  return 'admin';
}

/** Records this request as a denial if it ends 401, 403 or 429. `res.locals.actor` and `errorCode` say who and why, when known. */
export function denialRecorder(denials: DenialAudit): RequestHandler {
  return (req, res, next) => {
    res.once('finish', () => {
      if (res.statusCode !== 401 && res.statusCode !== 403 && res.statusCode !== 429) return;
      const actor = res.locals.actor as Actor | undefined;
      const path = maskedPath(req.originalUrl);
      denials.record({
        status: res.statusCode,
        family: familyOf(path),
        code: res.locals.errorCode as string | undefined,
        method: req.method,
        path,
        ip: req.ip ?? req.socket.remoteAddress,
        userAgent: req.get('user-agent'),
        actorId: actor?.userId,
        actorName: actor?.username,
      });
    });
    next();
  };
}
