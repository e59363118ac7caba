/**
 * The arena page: the web app in web/ (React, built by Vite into web/dist
 * by `npm start`, or `npm run web:build`), served at `/` by the API so it
 * talks to its own origin. Hashed assets are cached for good; index.html is
 * revalidated on every load, so a rebuild shows at the next reload.
 * Nothing here shadows an API route: only files that exist are served.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import express, { type RequestHandler } from 'express';
import { AppError } from '../domain/errors.ts';

export function webApp(dir: string): RequestHandler {
  const files = express.static(dir, {
    index: 'index.html',
    setHeaders(res, path) {
      res.set('Cache-Control', path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  });
  return (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    if (!existsSync(join(dir, 'index.html'))) {
      if (req.path === '/')
        return next(new AppError('ROUTE_NOT_FOUND', { detail: 'The arena page is not built: run `npm run web:build` (npm start does it)' }));
      return next();
    }
    files(req, res, next);
  };
}
