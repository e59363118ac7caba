/**
 * Request hardening: bad bodies on POST /v1/jobs get a 4xx problem+json with
 * the right code and write nothing; helmet's headers are on and X-Powered-By
 * is off; CORS answers only the configured origins; error bodies never carry
 * stack traces or file paths. This stack has a small body limit and depth
 * limit so the cases stay cheap.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { countJobs, leakPattern, rawRequest } from './helpers.ts';

const allowedOrigin = 'https://app.parley.test';
let stack: Stack;
let user: TestUser;

beforeAll(async () => {
  stack = await startStack({
    workers: false,
    env: { PARLEY_BODY_LIMIT: '16kb', PARLEY_JSON_MAX_DEPTH: '8', PARLEY_CORS_ORIGINS: `${allowedOrigin},https://admin.parley.test` },
  });
  user = await stack.user('member');
});
afterAll(() => stack?.stop());

/** Sends a raw body to POST /v1/jobs and returns the answer and the user's job-row delta. */
async function submitRaw(body: string, contentType = 'application/json') {
  const before = await countJobs(stack, { ownerId: user.id });
  const res = await rawRequest(stack, 'POST', '/v1/jobs', { body, headers: { ...user.auth, 'content-type': contentType } });
  return { res, written: (await countJobs(stack, { ownerId: user.id })) - before };
}

function expectProblem(res: { status: number; headers: Record<string, unknown>; json: any; text: string }, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.json.code).toBe(code);
  expect(res.text).not.toMatch(leakPattern);
}

describe('bad bodies on POST /v1/jobs', () => {
  it('refuses a body over the size limit with 413 PAYLOAD_TOO_LARGE and writes nothing', async () => {
    const { res, written } = await submitRaw(JSON.stringify({ kind: 'system.ping', input: { echo: 'x'.repeat(20_000) } }));
    expectProblem(res, 413, 'PAYLOAD_TOO_LARGE');
    expect(written).toBe(0);
  });

  it('refuses JSON nested deeper than PARLEY_JSON_MAX_DEPTH with 400 MALFORMED_BODY and writes nothing', async () => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < 12; i++) deep = { d: deep };
    const { res, written } = await submitRaw(JSON.stringify({ kind: 'system.ping', input: { echo: 'x' }, extra: deep }));
    expectProblem(res, 400, 'MALFORMED_BODY');
    expect(res.json.detail).toContain('8');
    expect(written).toBe(0);
  });

  it('refuses malformed JSON with 400 MALFORMED_BODY and writes nothing', async () => {
    const { res, written } = await submitRaw('{"kind": "system.ping", "input": {');
    expectProblem(res, 400, 'MALFORMED_BODY');
    expect(written).toBe(0);
  });

  it('refuses a non-JSON content type with 415 UNSUPPORTED_MEDIA_TYPE and writes nothing', async () => {
    const { res, written } = await submitRaw('kind=system.ping', 'text/plain');
    expectProblem(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
    expect(written).toBe(0);
  });

  it('refuses a form-encoded body on a JSON route with 415 and writes nothing', async () => {
    const { res, written } = await submitRaw('kind=system.ping&input=%7B%7D', 'application/x-www-form-urlencoded');
    expectProblem(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
    expect(written).toBe(0);
  });

  it('refuses a JSON body that fails the schema with 400 VALIDATION_FAILED and field paths, and writes nothing', async () => {
    const { res, written } = await submitRaw(JSON.stringify({ kind: 'system.ping', input: {}, priority: 'yesterday' }));
    expectProblem(res, 400, 'VALIDATION_FAILED');
    expect(res.json.errors.map((e: { path: string }) => e.path)).toContain('priority');
    expect(written).toBe(0);
  });

  // Issue 16: Postgres refuses both in jsonb, which answered 500; now the edge refuses them for every declared route.
  for (const [label, content] of [
    ['a NUL', 'hi\u0000there'],
    ['a lone surrogate', 'hi \udc00'],
  ] as const) {
    it(`refuses text holding ${label} with 400 VALIDATION_FAILED naming the field, and writes nothing`, async () => {
      const { res, written } = await submitRaw(JSON.stringify({ kind: 'llm.chat', input: { messages: [{ role: 'user', content }] } }));
      expectProblem(res, 400, 'VALIDATION_FAILED');
      expect(res.json.errors).toEqual([expect.objectContaining({ path: 'input.messages.0.content' })]);
      expect(written).toBe(0);
    });
  }

  it('accepts the same route with a good body (the refusals above are about the body)', async () => {
    const { res, written } = await submitRaw(JSON.stringify({ kind: 'system.ping', input: {} }));
    expect(res.status).toBe(202);
    expect(written).toBe(1);
  });
});

describe('response headers', () => {
  it('sends no X-Powered-By', async () => {
    const r = await rawRequest(stack, 'GET', '/healthz');
    expect(r.headers['x-powered-by']).toBeUndefined();
  });

  it("sends helmet's security headers", async () => {
    const r = await rawRequest(stack, 'GET', '/healthz');
    expect(r.headers['content-security-policy']).toContain("default-src 'self'");
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    // HSTS only over TLS (PARLEY_HSTS=auto): this request is plain HTTP. tests/spine/first-hour.test.ts covers TLS.
    expect(r.headers['strict-transport-security']).toBeUndefined();
    expect(r.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(r.headers['referrer-policy']).toBe('no-referrer');
    expect(r.headers['cross-origin-opener-policy']).toBe('same-origin');
  });

  it('sends the security headers on errors too', async () => {
    const r = await rawRequest(stack, 'GET', '/no/such/route');
    expect(r.status).toBe(404);
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['x-powered-by']).toBeUndefined();
  });
});

describe('CORS', () => {
  it('allows an origin from PARLEY_CORS_ORIGINS', async () => {
    const r = await rawRequest(stack, 'GET', '/v1/auth/me', { headers: { origin: allowedOrigin, ...user.auth } });
    expect(r.headers['access-control-allow-origin']).toBe(allowedOrigin);
    expect(r.headers.vary).toMatch(/Origin/);
  });

  it('answers a preflight from an allowed origin with the allowed methods and headers', async () => {
    const r = await rawRequest(stack, 'OPTIONS', '/v1/jobs', {
      headers: { origin: allowedOrigin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    expect(r.status).toBe(204);
    expect(r.headers['access-control-allow-origin']).toBe(allowedOrigin);
    expect(r.headers['access-control-allow-headers']).toMatch(/Authorization/i);
    expect(String(r.headers['access-control-allow-methods']).split(',').sort()).toEqual(['GET', 'HEAD', 'OPTIONS', 'POST']);
    // A path with a parameter, in another letter case and with a trailing slash, as the router matches it.
    const job = await rawRequest(stack, 'OPTIONS', '/V1/jobs/4f6c3a52-6f2e-4b8e-9d3a-0c5b8f1e2a77/', {
      headers: { origin: allowedOrigin, 'access-control-request-method': 'DELETE' },
    });
    expect(job.status).toBe(204);
    expect(job.headers['access-control-allow-methods']).toMatch(/DELETE/);
  });

  it('does not answer a preflight for a path the API does not have: it is the 404 any method gets', async () => {
    for (const path of ['/v1/nothing/here', '/v1/jobs/a/b/c/d', '/v1']) {
      const r = await rawRequest(stack, 'OPTIONS', path, { headers: { origin: allowedOrigin, 'access-control-request-method': 'POST' } });
      expect(r.status, path).toBe(404);
      expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(JSON.parse(r.text).code).toBe('ROUTE_NOT_FOUND');
      expect(r.headers['access-control-allow-methods']).toBeUndefined();
    }
  });

  it('gives another origin no CORS headers', async () => {
    const r = await rawRequest(stack, 'GET', '/v1/auth/me', { headers: { origin: 'https://evil.example', ...user.auth } });
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
    expect(r.headers['access-control-allow-credentials']).toBeUndefined();
  });

  it('gives a preflight from another origin no CORS headers', async () => {
    const r = await rawRequest(stack, 'OPTIONS', '/v1/jobs', { headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('error bodies', () => {
  const cases: [string, () => Promise<{ status: number; text: string }>][] = [
    ['malformed JSON', () => rawRequest(stack, 'POST', '/v1/jobs', { body: '{"a":', headers: { ...user.auth, 'content-type': 'application/json' } })],
    [
      'invalid charset',
      () => rawRequest(stack, 'POST', '/v1/jobs', { body: '{}', headers: { ...user.auth, 'content-type': 'application/json; charset=klingon' } }),
    ],
    ['an unknown route', () => rawRequest(stack, 'GET', '/v1/nothing/here')],
    ['a bad token', () => rawRequest(stack, 'GET', '/v1/auth/me', { headers: { authorization: 'Bearer a.b.c' } })],
    ['a bad path parameter', () => rawRequest(stack, 'GET', '/v1/jobs/not-a-uuid', { headers: user.auth })],
    [
      'an unknown job kind',
      () =>
        rawRequest(stack, 'POST', '/v1/jobs', {
          body: JSON.stringify({ kind: '../../etc/passwd', input: {} }),
          headers: { ...user.auth, 'content-type': 'application/json' },
        }),
    ],
    [
      'a malformed token request',
      () => rawRequest(stack, 'POST', '/v1/auth/token', { body: 'grant_type=password', headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
    ],
  ];
  for (const [name, send] of cases) {
    it(`carry no stack trace or file path for ${name}`, async () => {
      const r = await send();
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.text).not.toMatch(leakPattern);
      expect(r.text).not.toMatch(/"stack"|Error: /);
    });
  }
});
