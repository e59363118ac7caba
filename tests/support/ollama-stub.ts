/**
 * A fault-injecting Ollama stand-in, for the failures the real server cannot
 * produce on demand: 503 storms, a hang before headers, a hang or a
 * connection reset after some tokens, a host that goes away and comes back,
 * an answer that breaks the protocol.
 * Tests only; everything else is tested against the real Ollama.
 *
 * It speaks just enough of the API:
 *   POST /api/chat     NDJSON stream: one line per token, then a done line with counts
 *   POST /api/embed    { model, embeddings, prompt_eval_count } (4-dim vectors derived from the text)
 *   GET  /api/version  { version }
 *   GET  /api/tags     { models: [{ name, model, digest, size }] } from `models.installed`
 *   GET  /api/ps       { models: [{ name, model, digest, size, size_vram, expires_at }] } from `models.loaded`
 *
 * Behaviour per request of /api/chat and /api/embed: the next scripted answer
 * (`script(...)`, consumed in order), else `fallback`.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type StubAnswer =
  /** A normal answer: `tokens` streamed `tokenDelayMs` apart, after `firstTokenDelayMs`. */
  | { kind: 'ok'; tokens?: string[]; firstTokenDelayMs?: number; tokenDelayMs?: number }
  /** An HTTP error with Ollama's `{ error }` body, e.g. 503 "server busy". */
  | { kind: 'status'; status: number; error?: string }
  /** Accept the request and never answer (no headers). */
  | { kind: 'hang' }
  /** Stream `tokens` tokens, then stall forever. */
  | { kind: 'hang-after'; tokens: number }
  /** Stream `tokens` tokens, then reset the connection. */
  | { kind: 'reset-after'; tokens: number }
  /** 200 with this body as it is: an answer that breaks the protocol (malformed JSON, too few vectors). */
  | { kind: 'raw'; body: string };

export interface StubRequest {
  method: string;
  path: string;
  body: any;
  /** The client's port: equal ports mean a reused keep-alive connection. */
  remotePort: number | undefined;
  at: number;
}

export interface StubModels {
  installed: { name: string; digest: string; size?: number }[];
  loaded: { name: string; digest?: string; size?: number; size_vram?: number; expires_at?: string }[];
}

export interface OllamaStub {
  readonly url: string;
  readonly requests: StubRequest[];
  models: StubModels;
  fallback: StubAnswer;
  /** Queues answers for the next requests to `path` (/api/chat or /api/embed). */
  script(path: '/api/chat' | '/api/embed', ...answers: StubAnswer[]): void;
  count(path: string): number;
  /** Requests to `path` in flight right now (answer not finished). */
  active(path: string): number;
  /** Highest number of concurrent requests to `path` seen so far. */
  peak(path: string): number;
  /** Stops listening and drops every connection (the host "goes down"). */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

const defaultTokens = ['Hello', ' from', ' the', ' stub', '.'];

function vector(text: string): number[] {
  const h = createHash('sha256').update(text).digest();
  return [0, 1, 2, 3].map((i) => (h[i]! - 128) / 128);
}

export async function startOllamaStub(init: { models?: Partial<StubModels>; fallback?: StubAnswer } = {}): Promise<OllamaStub> {
  const requests: StubRequest[] = [];
  const scripts = new Map<string, StubAnswer[]>();
  const sockets = new Set<Socket>();
  const activeCount = new Map<string, number>();
  const peakCount = new Map<string, number>();
  let server: Server;
  let port = 0;

  const stub: OllamaStub = {
    url: '',
    requests,
    models: { installed: init.models?.installed ?? [], loaded: init.models?.loaded ?? [] },
    fallback: init.fallback ?? { kind: 'ok' },
    script(path, ...answers) {
      scripts.set(path, [...(scripts.get(path) ?? []), ...answers]);
    },
    count: (path) => requests.filter((r) => r.path === path).length,
    active: (path) => activeCount.get(path) ?? 0,
    peak: (path) => peakCount.get(path) ?? 0,
    async down() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
    async up() {
      await listen(port);
    },
    close: () => stub.down(),
  };

  const track = (path: string, delta: number) => {
    const n = (activeCount.get(path) ?? 0) + delta;
    activeCount.set(path, n);
    peakCount.set(path, Math.max(peakCount.get(path) ?? 0, n));
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const body = raw ? JSON.parse(raw) : undefined;
    const path = (req.url ?? '/').split('?')[0]!;
    requests.push({ method: req.method ?? 'GET', path, body, remotePort: req.socket.remotePort, at: Date.now() });
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    switch (path) {
      case '/api/version':
        return json(200, { version: '0.0.0-stub' });
      case '/api/tags':
        return json(200, { models: stub.models.installed.map((m) => ({ name: m.name, model: m.name, digest: m.digest, size: m.size ?? 1000 })) });
      case '/api/ps':
        return json(200, {
          models: stub.models.loaded.map((m) => ({
            name: m.name,
            model: m.name,
            digest: m.digest ?? '',
            size: m.size ?? 2000,
            size_vram: m.size_vram ?? 0,
            expires_at: m.expires_at ?? new Date(Date.now() + 600_000).toISOString(),
          })),
        });
      case '/api/chat':
      case '/api/embed':
        break;
      default:
        return json(404, { error: `stub: no route ${path}` });
    }
    const answer = scripts.get(path)?.shift() ?? stub.fallback;
    track(path, 1);
    res.on('close', () => track(path, -1));
    if (answer.kind === 'status') return json(answer.status, { error: answer.error ?? `stub: HTTP ${answer.status}` });
    if (answer.kind === 'hang') return;
    if (answer.kind === 'raw') {
      res.writeHead(200, { 'content-type': path === '/api/chat' ? 'application/x-ndjson' : 'application/json' });
      return void res.end(answer.body);
    }
    if (path === '/api/embed') {
      const input: string[] = Array.isArray(body?.input) ? body.input : [String(body?.input ?? '')];
      return json(200, { model: body?.model, embeddings: input.map(vector), prompt_eval_count: input.length * 3 });
    }
    const model = body?.model ?? 'stub';
    const line = (v: unknown) => res.write(`${JSON.stringify(v)}\n`);
    const tokenLine = (t: string) => line({ model, created_at: new Date().toISOString(), message: { role: 'assistant', content: t }, done: false });
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    if (answer.kind === 'hang-after' || answer.kind === 'reset-after') {
      for (let i = 0; i < answer.tokens; i++) tokenLine(`t${i} `);
      if (answer.kind === 'reset-after') setTimeout(() => req.socket.destroy(), 20);
      return;
    }
    const tokens = answer.tokens ?? defaultTokens;
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    if (answer.firstTokenDelayMs) await sleep(answer.firstTokenDelayMs);
    for (const t of tokens) {
      if (res.destroyed) return;
      tokenLine(t);
      if (answer.tokenDelayMs) await sleep(answer.tokenDelayMs);
    }
    line({
      model,
      created_at: new Date().toISOString(),
      message: { role: 'assistant', content: '' },
      done: true,
      done_reason: 'stop',
      prompt_eval_count: 7,
      eval_count: tokens.length,
      total_duration: 1,
      eval_duration: 1,
    });
    res.end();
  }

  function listen(p: number): Promise<void> {
    server = createServer((req, res) => {
      handle(req, res).catch(() => res.destroy());
    });
    server.keepAliveTimeout = 60_000;
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    return new Promise((resolve) => server.listen(p, '127.0.0.1', () => resolve()));
  }

  await listen(0);
  port = (server!.address() as AddressInfo).port;
  (stub as { url: string }).url = `http://127.0.0.1:${port}`;
  return stub;
}
