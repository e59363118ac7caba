/**
 * HTTP access logs (pino-http): one line per finished request, on the
 * process's logger, so the level is the API's (PARLEY_API_LOG_LEVEL or
 * LOG_LEVEL). Each line carries `requestId` (the X-Request-Id the client sent
 * or we made, the same id the job envelope carries to the worker), the method,
 * the path without its query string (it may hold a token), the status and
 * `responseTime` in ms; and `jobId` when the request named or created a job.
 * Probes and scrapes (/healthz, /readyz, /metrics) are not logged.
 *
 *   {"level":30,"proc":"api","requestId":"…","req":{"method":"POST","url":"/v1/jobs"},
 *    "res":{"statusCode":202},"jobId":"…","responseTime":12,"msg":"POST /v1/jobs 202"}
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler, Response } from 'express';
import { pinoHttp } from 'pino-http';
import type { Logger } from '../../platform/observability/index.ts';

const quiet = new Set(['/healthz', '/readyz', '/metrics']);
const pathOf = (url: string | undefined) => (url ?? '/').split('?')[0]!;
const jobPath = /^\/v1\/jobs\/([0-9a-f-]{36})(?:\/|$)/;

/** The job a request created (Location of a 202) or addressed (/v1/jobs/:id...). */
function jobIdOf(req: IncomingMessage, res: ServerResponse): string | undefined {
  const location = res.getHeader('location');
  return jobPath.exec(typeof location === 'string' ? location : '')?.[1] ?? jobPath.exec(pathOf(req.url))?.[1];
}

export function accessLog(log: Logger): RequestHandler {
  const middleware = pinoHttp({
    logger: log,
    genReqId: (_req, res) => ((res as Response).locals?.requestId as string | undefined) ?? 'unknown',
    customAttributeKeys: { reqId: 'requestId' },
    autoLogging: { ignore: (req) => quiet.has(pathOf(req.url)) },
    // Our own serialisers: never the headers (Authorization, cookies) nor the query string.
    wrapSerializers: false,
    serializers: {
      req: (req: IncomingMessage) => ({ method: req.method, url: pathOf((req as { originalUrl?: string }).originalUrl ?? req.url) }),
      res: (res: ServerResponse) => ({ statusCode: res.statusCode }),
    },
    customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : 'info'),
    customSuccessMessage: (req, res) => `${req.method} ${pathOf((req as { originalUrl?: string }).originalUrl ?? req.url)} ${res.statusCode}`,
    customErrorMessage: (req, res) => `${req.method} ${pathOf((req as { originalUrl?: string }).originalUrl ?? req.url)} ${res.statusCode}`,
    customSuccessObject: (req, res, val: Record<string, unknown>) => {
      const jobId = jobIdOf(req, res);
      return jobId ? { ...val, jobId } : val;
    },
    // The route's own logging keeps using the process logger; no per-request child is needed.
    quietReqLogger: true,
  });
  return middleware as unknown as RequestHandler;
}
