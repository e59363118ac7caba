/**
 * A fault-injecting HTTP proxy in front of the real API, for failures the
 * real server does not produce on demand: a 503 or 429 with Retry-After, a
 * connection reset before the request reaches the API, a response lost after
 * the API acted on the request, an event stream cut mid-way. It fronts any
 * HTTP server (Ollama too): a request held in flight until the test lets it
 * go puts a job mid-call at a moment of the test's choosing.
 *
 * Faults are queued per request: `proxy.inject(match, fault)` applies `fault`
 * to the next request `match` accepts (once; `times` for more). Every request
 * is logged with its method, path and headers.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault =
  /** Answer without forwarding: `body` as JSON, or as it is when a string. */
  | { kind: 'respond'; status: number; headers?: Record<string, string>; body?: unknown }
  /** Reset the connection before forwarding: the API never sees the request. */
  | { kind: 'reset' }
  /** Forward, let the API answer in full, then reset the connection: the client never sees the answer. */
  | { kind: 'lose-response' }
  /** Forward and relay the response, but reset the connection after this many body bytes. */
  | { kind: 'cut-after'; bytes: number }
  /** Forward after this many milliseconds (a slow upstream). */
  | { kind: 'delay'; ms: number }
  /** Forward once `until` settles: the request waits, in flight, for as long as the test needs. */
  | { kind: 'hold'; until: Promise<unknown> };

export interface Logged {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  fault: Fault['kind'] | undefined;
}

export interface FaultProxy {
  url: string;
  log: Logged[];
  inject(match: (method: string, path: string) => boolean, fault: Fault, times?: number): void;
  close(): Promise<void>;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const rules: { match: (m: string, p: string) => boolean; fault: Fault; left: number }[] = [];
  const log: Logged[] = [];
  const server: Server = createServer((req, res) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const rule = rules.find((r) => r.left > 0 && r.match(method, path.split('?')[0]!));
    if (rule) rule.left--;
    const fault = rule?.fault;
    log.push({ method, path, headers: req.headers, fault: fault?.kind });
    if (fault?.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'respond') {
      // A string is sent as it is (an NDJSON stream, say); anything else as JSON.
      const body = fault.body === undefined ? '' : typeof fault.body === 'string' ? fault.body : JSON.stringify(fault.body);
      res.writeHead(fault.status, { 'content-type': 'application/problem+json', ...fault.headers });
      res.end(body);
      return;
    }
    if (fault?.kind === 'delay' || fault?.kind === 'hold') {
      // The request's body waits in the socket meanwhile.
      req.pause();
      const go = () => forward(req, res, undefined);
      if (fault.kind === 'delay') setTimeout(go, fault.ms);
      else fault.until.then(go, go);
      return;
    }
    forward(req, res, fault);
  });
  const forward = (req: IncomingMessage, res: ServerResponse, fault: Fault | undefined) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const up = httpRequest({ host: upstream.hostname, port: upstream.port, method, path, headers: { ...req.headers, host: upstream.host } }, (upRes) => {
      if (fault?.kind === 'lose-response') {
        upRes.resume();
        upRes.on('end', () => req.socket.destroy());
        return;
      }
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      let sent = 0;
      upRes.on('data', (chunk: Buffer) => {
        if (fault?.kind === 'cut-after' && sent + chunk.length > fault.bytes) {
          res.write(chunk.subarray(0, Math.max(0, fault.bytes - sent)));
          upRes.destroy();
          req.socket.destroy();
          return;
        }
        sent += chunk.length;
        res.write(chunk);
      });
      upRes.on('end', () => res.end());
      upRes.on('error', () => req.socket.destroy());
    });
    up.on('error', () => req.socket.destroy());
    req.pipe(up);
    // The client left (it aborted, or we cut it): stop the upstream request too.
    res.on('close', () => up.destroy());
  };
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    log,
    inject(match, fault, times = 1) {
      rules.push({ match, fault, left: times });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
