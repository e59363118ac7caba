/**
 * Bull Board at /admin/queues, behind auth: admins get the full board,
 * operators a read-only one (every action — retry, clean, promote, remove,
 * pause — is 403), everyone else 401/403 as problem+json, on its pages and
 * its JSON API alike.
 *
 * Browsers cannot attach a Bearer header to page loads, so the board also
 * accepts the access token in the `parley_token` cookie; `?token=` sets
 * that cookie (HttpOnly, SameSite=Strict, path /admin/queues) and redirects.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { Router, type Request, type RequestHandler } from 'express';
import type { Queues } from '../../platform/jobs/index.ts';
import { can } from '../auth/permissions.ts';
import { AppError } from './app-error.ts';
import type { Authenticate } from './mount.ts';

const basePath = '/admin/queues';

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

function cookieToken(req: Request): string | undefined {
  const m = /(?:^|;\s*)parley_token=([^;]+)/.exec(req.headers.cookie ?? '');
  return m ? decodeURIComponent(m[1]!) : undefined;
}

export function bullBoardRouter(queues: Queues, authenticate: Authenticate): Router {
  const full = board(queues, false);
  const readOnly = board(queues, true);
  const router = Router();
  router.use(async (req, res, next) => {
    try {
      if (typeof req.query.token === 'string' && req.method === 'GET') {
        res.cookie('parley_token', req.query.token, { httpOnly: true, sameSite: 'strict', path: basePath, secure: req.secure });
        return res.redirect(303, basePath + req.path.replace(/^\/$/, '/'));
      }
      if (!req.headers.authorization) {
        const token = cookieToken(req);
        if (token) req.headers.authorization = `Bearer ${token}`;
      }
      const actor = await authenticate(req, res);
      if (!actor) throw new AppError('UNAUTHENTICATED', { detail: `Open ${basePath}?token=<access token> in a browser (it sets a cookie), or send "Authorization: Bearer <access token>"` });
      if (can(actor, 'queues:write')) return full(req, res, next);
      if (can(actor, 'queues:read')) {
        // Read-only is enforced here, for every action, not left to the board: its own read-only
        // mode refuses per-queue actions but lets "pause all" through as a silent no-op.
        if (req.method !== 'GET' && req.method !== 'HEAD') throw new AppError('FORBIDDEN', { detail: 'The queue dashboard is read-only for operators; actions need queues:write' });
        return readOnly(req, res, next);
      }
      throw new AppError('FORBIDDEN', { detail: 'The queue dashboard is for operators and admins' });
    } catch (err) {
      next(err);
    }
  });
  return router;
}
