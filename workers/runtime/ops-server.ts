/**
 * A worker process's own HTTP endpoints, on PARLEY_WORKER_PORT:
 *
 *   GET /healthz  200 {status:"ok"} while the process runs (liveness: restart it when this fails)
 *   GET /readyz   200 {status:"ready", checks} when Redis and Postgres answer and the BullMQ workers
 *                 run; 503 {status:"degraded"|"stopping", checks} otherwise (stopping: after SIGTERM)
 *   GET /metrics  this process's Prometheus registry alone; with PARLEY_METRICS_TOKEN set, only for
 *                 "Authorization: Bearer <token>" (401 otherwise)
 *
 * Anything else is a 404 (405 for another method) as problem+json. The server
 * holds no job state: the runtime stays the only owner of its jobs.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../../platform/observability/index.ts';
import { isScrapeToken, timedCheck, type CheckResult } from '../../platform/observability/index.ts';
import { listen } from '../../platform/host.ts';

export interface OpsServerDeps {
  host: string;
  port: number;
  registry: Registry;
  /** PARLEY_METRICS_TOKEN; when set, /metrics needs it. */
  token?: string;
  log: Logger;
  /** Dependency checks for /readyz, by name. */
  checks: Record<string, () => Promise<unknown>>;
  /** False once the process began to stop, or when its BullMQ workers are not running. */
  accepting: () => boolean;
  /** Refreshes gauges that are sampled rather than counted (e.g. Ollama limits) right before a scrape. */
  beforeScrape?: () => void;
}

export interface OpsServer {
  port: number;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const problem = (status: number, code: string, title: string) => ({ type: 'about:blank', title, status, code });

export async function startOpsServer(deps: OpsServerDeps): Promise<OpsServer> {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (!['/healthz', '/readyz', '/metrics'].includes(path)) return send(res, 404, problem(404, 'ROUTE_NOT_FOUND', 'Not found'), 'application/problem+json');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(res, 405, problem(405, 'METHOD_NOT_ALLOWED', 'Method not allowed'), 'application/problem+json');
    }
    if (path === '/healthz') return send(res, 200, { status: 'ok' });
    if (path === '/readyz') {
      const names = Object.keys(deps.checks);
      const results = await Promise.all(names.map((n) => timedCheck(deps.checks[n]!, 2000)));
      const checks: Record<string, CheckResult> = Object.fromEntries(names.map((n, i) => [n, results[i]!]));
      const accepting = deps.accepting();
      checks.workers = { ok: accepting, ms: 0, ...(accepting ? {} : { detail: 'not taking jobs (stopping, or BullMQ workers not running)' }) };
      const ok = Object.values(checks).every((c) => c.ok);
      return send(res, ok ? 200 : 503, { status: ok ? 'ready' : accepting ? 'degraded' : 'stopping', checks });
    }
    if (deps.token && !isScrapeToken(req.headers.authorization, deps.token)) {
      res.setHeader('www-authenticate', 'Bearer realm="parley-worker"');
      return send(res, 401, problem(401, 'UNAUTHENTICATED', 'Send "Authorization: Bearer <PARLEY_METRICS_TOKEN>"'), 'application/problem+json');
    }
    deps.beforeScrape?.();
    return send(res, 200, await deps.registry.metrics(), deps.registry.contentType);
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      deps.log.error({ err }, 'ops endpoint failed');
      if (!res.headersSent) send(res, 500, problem(500, 'INTERNAL', 'Internal error'), 'application/problem+json');
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  await listen(server, deps.port, deps.host, "the workers' ops server", 'PARLEY_WORKER_PORT');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
