/**
 * Bull Board at /admin/queues, behind auth: admins get the full board,
 * operators a read-only one (every action — retry, clean, promote, remove,
 * pause — is 403), everyone else 401/403 as problem+json, on its pages and
 * its JSON API alike.
 *
 * Credentials: an access token, never an API key (a key is for machines; the
 * board is for people, and its actions are audited as theirs).
 * - `Authorization: Bearer <access token>`;
 * - or, for a browser, which cannot attach a header to a page load, the
 *   `parley_token` cookie. `GET /admin/queues/?token=<access token>` checks
 *   the token, exchanges it at once for an opaque board session
 *   (api/auth/board-sessions.ts) and redirects to the same page without it:
 *   the cookie is HttpOnly, SameSite=Strict, Path=/admin/queues, Secure when
 *   the request came over TLS (or PARLEY_HSTS=always), and lives no longer
 *   than PARLEY_BOARD_SESSION_TTL_S nor than the token. The session behind it
 *   is checked on every request, so a logout ends the board too.
 *
 * Every write an admin makes through the board (any method but GET and
 * HEAD) is audited as `queues.board_action` with its outcome, and counted.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { Router, type Request, type RequestHandler, type Response } from 'express';
import type { Queues } from '../../platform/jobs/index.ts';
import type { Audit } from '../auth/audit.ts';
import type { BoardSessions } from '../auth/board-sessions.ts';
import { maskedPath } from '../auth/denials.ts';
import { can, type Actor } from '../auth/permissions.ts';
import type { TokenVerifier } from '../auth/tokens.ts';
import { unauthenticated } from '../auth/unauthenticated.ts';
import { AppError } from '../domain/errors.ts';

const basePath = '/admin/queues';
const COOKIE = 'parley_token';

export interface BoardDeps {
  queues: Queues;
  tokens: TokenVerifier;
  sessions: BoardSessions;
  audit: Audit;
  /** Mark the cookie Secure on every request, not only those over TLS (PARLEY_HSTS=always). */
  alwaysSecure: boolean;
  /** Hears each write through the board (metrics). */
  onAction?: (method: string, outcome: 'success' | 'failure') => void;
  /**
   * The product's retry (POST /v1/jobs/:id/retry): the board's retry buttons go through it, so a retry
   * resets the job's record, passes admission and the per-kind refusals, instead of moving BullMQ's
   * copy alone (which the worker, finding the record terminal, would finish again without running it).
   */
  retry: (actor: Actor, jobId: string, meta: { ip?: string; userAgent?: string; requestId?: string }) => Promise<unknown>;
}

/** Board actions that would put a job in a queue, or change one's payload, without the job's record. */
const unrecordedWrites = [/^\/api\/queues\/[^/]+\/add\/?$/, /^\/api\/queues\/[^/]+\/[^/]+\/update-data\/?$/];
const jobRetry = /^\/api\/queues\/([^/]+)\/([^/]+)\/retry\/?$/;
const queueRetry = /^\/api\/queues\/([^/]+)\/retry\/([^/]+)\/?$/;

function board(queues: Queues, readOnly: boolean): RequestHandler {
  const adapter = new ExpressAdapter();
  adapter.setBasePath(basePath);
  createBullBoard({
    queues: Object.values(queues).map((q) => new BullMQAdapter(q, { readOnlyMode: readOnly, allowRetries: !readOnly })),
    serverAdapter: adapter,
    options: { uiConfig: { boardTitle: readOnly ? 'Parley queues (read-only)' : 'Parley queues' } },
  });
  return adapter.getRouter() as RequestHandler;
}

function cookieValue(req: Request): string | undefined {
  const m = new RegExp(`(?:^|;\\s*)${COOKIE}=([^;]+)`).exec(req.headers.cookie ?? '');
  return m ? decodeURIComponent(m[1]!) : undefined;
}

const isWrite = (req: Request) => req.method !== 'GET' && req.method !== 'HEAD';

export function bullBoardRouter(deps: BoardDeps): Router {
  const full = board(deps.queues, false);
  const readOnly = board(deps.queues, true);

  /** An access token → its actor and expiry; API keys are refused here. */
  async function accessToken(token: string): Promise<{ actor: Actor; expiresAt: number }> {
    if (token.startsWith('pk_')) throw unauthenticated('API keys are not accepted by the queue board; open it with an access token');
    const { actor, expiresAt } = await deps.tokens.authenticate(token);
    if (expiresAt === undefined || !actor.sessionId) throw unauthenticated('the queue board needs an access token');
    return { actor, expiresAt };
  }

  async function actorOf(req: Request): Promise<Actor | undefined> {
    const header = req.get('authorization');
    if (header) {
      const m = /^Bearer\s+(\S+)$/i.exec(header);
      if (!m) throw unauthenticated('Use "Authorization: Bearer <access token>"');
      return (await accessToken(m[1]!)).actor;
    }
    const cookie = cookieValue(req);
    if (!cookie) return undefined;
    const session = await deps.sessions.resolve(cookie);
    if (!session) throw unauthenticated(`the board session expired; open ${basePath}/?token=<access token> again`);
    return deps.tokens.sessionActor(session.sid, session.uid);
  }

  function auditWrite(req: Request, res: Response, actor: Actor): void {
    const path = maskedPath(req.originalUrl);
    const queue = /^\/admin\/queues\/api\/queues\/([^/]+)/.exec(path)?.[1];
    res.once('finish', () => {
      const outcome = res.statusCode < 400 ? 'success' : 'failure';
      deps.onAction?.(req.method, outcome);
      void deps.audit({
        action: 'queues.board_action',
        outcome,
        actorId: actor.userId,
        actorName: actor.username,
        ip: req.ip,
        userAgent: req.get('user-agent'),
        targetType: 'queue',
        targetId: queue ? decodeURIComponent(queue) : '*',
        details: { method: req.method, path, status: res.statusCode },
      });
    });
  }

  /** The board writes that go through the product instead of BullMQ alone; false for the others. */
  async function productWrite(req: Request, res: Response, actor: Actor): Promise<boolean> {
    const meta = { ip: req.ip, userAgent: req.get('user-agent'), requestId: res.locals.requestId as string | undefined };
    if (unrecordedWrites.some((re) => re.test(req.path)))
      throw new AppError('FORBIDDEN', {
        detail: 'Jobs are submitted through POST /v1/jobs, which records them; the board cannot add a job or change its payload',
      });
    const one = req.method === 'PUT' ? jobRetry.exec(req.path) : null;
    if (one) {
      await deps.retry(actor, decodeURIComponent(one[2]!), meta);
      res.status(204).end();
      return true;
    }
    const all = req.method === 'PUT' ? queueRetry.exec(req.path) : null;
    if (all) {
      const status = decodeURIComponent(all[2]!);
      if (status !== 'failed') throw new AppError('INVALID_STATE', { detail: `Only failed jobs can be retried, not ${status} ones` });
      const queue = Object.values(deps.queues).find((q) => q.name === decodeURIComponent(all[1]!));
      if (!queue) throw new AppError('NOT_FOUND', { detail: 'No such queue' });
      // Each through the product's retry; a job it refuses (a child, an internal kind, one retried meanwhile) stays as it is.
      let retried = 0;
      const refused: { jobId: string; code: string }[] = [];
      for (const job of await queue.getJobs(['failed'])) {
        if (!job?.id) continue;
        try {
          await deps.retry(actor, job.id, meta);
          retried += 1;
        } catch (err) {
          if (!(err instanceof AppError)) throw err;
          refused.push({ jobId: job.id, code: err.code });
        }
      }
      res.status(200).json({ retried, refused });
      return true;
    }
    return false;
  }

  const router = Router();
  router.use(async (req, res, next) => {
    try {
      if (typeof req.query.token === 'string' && req.method === 'GET') {
        res.set({ 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer' });
        const { actor, expiresAt } = await accessToken(req.query.token);
        res.locals.actor = actor;
        if (!can(actor, 'queues:read')) throw new AppError('FORBIDDEN', { detail: 'The queue dashboard is for operators and admins' });
        const { id, maxAgeSeconds } = await deps.sessions.issue(actor.sessionId!, actor.userId, expiresAt);
        res.cookie(COOKIE, id, { httpOnly: true, sameSite: 'strict', path: basePath, secure: req.secure || deps.alwaysSecure, maxAge: maxAgeSeconds * 1000 });
        return res.redirect(303, basePath + req.path.replace(/^\/$/, '/'));
      }
      const actor = await actorOf(req);
      res.locals.actor = actor;
      if (!actor)
        throw new AppError('UNAUTHENTICATED', {
          detail: `Open ${basePath}/?token=<access token> in a browser (it sets a cookie), or send "Authorization: Bearer <access token>"`,
        });
      if (can(actor, 'queues:write')) {
        if (isWrite(req)) auditWrite(req, res, actor);
        if (req.method === 'PUT' || req.method === 'POST' || req.method === 'PATCH') {
          const handled = await productWrite(req, res, actor);
          if (handled) return;
        }
        return full(req, res, next);
      }
      if (can(actor, 'queues:read')) {
        // Read-only is enforced here, for every action, not left to the board: its own read-only
        // mode refuses per-queue actions but lets "pause all" through as a silent no-op.
        if (isWrite(req)) throw new AppError('FORBIDDEN', { detail: 'The queue dashboard is read-only for operators; actions need queues:write' });
        return readOnly(req, res, next);
      }
      throw new AppError('FORBIDDEN', { detail: 'The queue dashboard is for operators and admins' });
    } catch (err) {
      next(err);
    }
  });
  return router;
}
