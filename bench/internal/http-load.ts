/**
 * HTTP load generator, run as a helper process (bench/internal/child.ts) so
 * its CPU is not the server's: a fixed number of requests in flight over
 * keep-alive connections (one node:http Agent per target, `concurrency`
 * sockets), each lane sending its next request when its last one completes.
 *
 * Request: LoadRequest. Reply: LoadResult, with per-request latency from
 * the call to the end of the response body, and this process's CPU time.
 */
import { Agent, request } from 'node:http';
import { serveHelper } from './child.ts';
import { summarize, type LatencySummary } from './stats.ts';

export interface LoadRequest {
  url: string;
  method: 'POST' | 'GET';
  headers: Record<string, string>;
  body?: string;
  count: number;
  concurrency: number;
}

export interface LoadResult {
  count: number;
  elapsedMs: number;
  perSecond: number;
  latency: LatencySummary;
  /** Responses by status code; a transport error counts as "error". */
  statuses: Record<string, number>;
  /** The first non-2xx answer, to say why. */
  firstFailure?: string;
  /** Response headers of the first answer (e.g. to see whether a rate limiter counted it). */
  sampleHeaders: Record<string, string | string[] | undefined>;
  cpuMs: number;
}

const agents = new Map<string, Agent>();

function agentFor(origin: string, sockets: number): Agent {
  let a = agents.get(origin);
  if (!a) {
    a = new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
    agents.set(origin, a);
  }
  return a;
}

async function load(req: LoadRequest): Promise<LoadResult> {
  const url = new URL(req.url);
  const agent = agentFor(url.origin, req.concurrency);
  const body = req.body === undefined ? undefined : Buffer.from(req.body);
  const headers = { ...req.headers, ...(body ? { 'content-length': String(body.length) } : {}) };
  const latencies = new Float64Array(req.count);
  const statuses: Record<string, number> = {};
  let firstFailure: string | undefined;
  let sampleHeaders: LoadResult['sampleHeaders'] = {};
  let next = 0;

  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const r = request({ host: url.hostname, port: url.port, path: url.pathname, method: req.method, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          latencies[i] = performance.now() - t0;
          const code = String(res.statusCode);
          statuses[code] = (statuses[code] ?? 0) + 1;
          if (i === 0) sampleHeaders = res.headers;
          if ((res.statusCode ?? 0) >= 300 && !firstFailure) firstFailure = `${code} ${Buffer.concat(chunks).toString().slice(0, 300)}`;
          resolve();
        });
      });
      r.on('error', (err) => {
        latencies[i] = performance.now() - t0;
        statuses.error = (statuses.error ?? 0) + 1;
        firstFailure ??= `error ${err.message}`;
        resolve();
      });
      r.end(body);
    });

  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(req.concurrency, req.count) }, async () => {
      while (next < req.count) await one(next++);
    }),
  );
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return {
    count: req.count,
    elapsedMs,
    perSecond: req.count / (elapsedMs / 1000),
    latency: summarize(Array.from(latencies)),
    statuses,
    firstFailure,
    sampleHeaders,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

serveHelper(load, async () => {
  for (const a of agents.values()) a.destroy();
});
