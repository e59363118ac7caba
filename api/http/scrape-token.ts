/**
 * GET /metrics for Prometheus with PARLEY_METRICS_TOKEN: a request carrying
 * exactly that bearer token is answered here, before the rate limiters and
 * the authenticator (which would refuse a token that is not a credential).
 * Anything else passes on to the route, which asks for `metrics:read`.
 */
import type { RequestHandler } from 'express';
import { isScrapeToken } from '../../platform/observability/index.ts';
import { renderMetrics, type MetricsDeps } from '../domain/metrics.ts';

export function scrapeTokenEndpoint(token: string | undefined, deps: MetricsDeps): RequestHandler {
  return (req, res, next) => {
    if (!token || req.method !== 'GET' || req.path !== '/' || !isScrapeToken(req.get('authorization'), token)) return next();
    renderMetrics(deps).then(({ text, contentType }) => {
      res.set('Cache-Control', 'no-store').type(contentType).send(text);
    }, next);
  };
}
