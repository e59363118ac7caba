import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';

let stack: Stack;
let alice: TestUser;

beforeAll(async () => {
  stack = await startStack();
  alice = await stack.user('member');
});
afterAll(() => stack?.stop());

const submit = (body: unknown, headers: Record<string, string> = {}, user = alice) => stack.request('POST', '/v1/jobs', { user, body, headers });

describe('job kinds complete with real output', () => {
  it('runs llm.chat on the real chat model and records Ollama usage', async () => {
    const r = await submit({ kind: 'llm.chat', input: { messages: [{ role: 'user', content: 'Say hello.' }], options: { num_predict: 24, temperature: 0 } } });
    expect(r.status).toBe(202);
    expect(r.json).toMatchObject({ kind: 'llm.chat', state: 'queued', links: { self: `/v1/jobs/${r.json.id}` } });
    const job = await stack.waitForJob(r.json.id, alice);
    expect(job.state).toBe('completed');
    expect(job.result.text.length).toBeGreaterThan(0);
    expect(job.result.model).toBe(process.env.PARLEY_CHAT_MODEL);
    expect(job.usage.estimated).toBe(false);
    expect(job.usage.promptTokens).toBeGreaterThan(0);
    expect(job.usage.completionTokens).toBe(job.result.usage.completionTokens);
    expect(job.usage.completionTokens).toBeGreaterThan(0);
    expect(job.usage.completionTokens).toBeLessThanOrEqual(24);
    expect(job.attempts).toBe(1);
    expect(Date.parse(job.timings.startedAt)).toBeGreaterThanOrEqual(Date.parse(job.timings.queuedAt));
    expect(Date.parse(job.timings.finishedAt)).toBeGreaterThanOrEqual(Date.parse(job.timings.startedAt));
  });

  it('runs embed.batch into 384-dimension vectors, in batches', async () => {
    const texts = ['the cat sat on the mat', 'a kitten rests on a rug', 'quarterly tax filing deadline', 'stock markets fell sharply'];
    const r = await submit({ kind: 'embed.batch', input: { texts, batchSize: 3 } });
    const job = await stack.waitForJob(r.json.id, alice);
    expect(job.state).toBe('completed');
    expect(job.result.dimensions).toBe(384);
    expect(job.result.embeddings).toHaveLength(4);
    const cos = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0) / Math.hypot(...a) / Math.hypot(...b);
    const [cat, kitten, tax] = job.result.embeddings;
    expect(cos(cat, kitten)).toBeGreaterThan(cos(cat, tax));
    expect(job.usage.promptTokens).toBeGreaterThan(0);
  });

  it('runs code.chunk on the thread pool and returns symbols with line ranges', async () => {
    const content = [
      'export class Greeter {',
      '  greet(name: string) {',
      '    return `hi ${name}`;',
      '  }',
      '}',
      '',
      'export function add(a: number, b: number) {',
      '  return a + b;',
      '}',
      '',
    ].join('\n');
    const py = 'def hello():\n    return 1\n';
    const r = await submit({
      kind: 'code.chunk',
      input: {
        files: [
          { path: 'src/greeter.ts', content },
          { path: 'x.py', content: py },
        ],
      },
    });
    const job = await stack.waitForJob(r.json.id, alice);
    expect(job.state).toBe('completed');
    const symbols = job.result.chunks.map(
      (c: { symbol: string; kind: string; startLine: number; endLine: number }) => `${c.kind}:${c.symbol}:${c.startLine}-${c.endLine}`,
    );
    expect(symbols).toEqual(expect.arrayContaining(['class:Greeter:1-5', 'method:Greeter.greet:2-4', 'function:add:7-9', 'function:hello:1-2']));
    expect(job.result.chunks.every((c: { contentHash: string }) => /^[0-9a-f]{64}$/.test(c.contentHash))).toBe(true);
  });

  it('runs system.ping end to end and reports the worker and attempt', async () => {
    // Members may ask for normal or batch (PARLEY_ROLE_CAPS `priorities`); interactive is for operators and the platform.
    const r = await submit({ kind: 'system.ping', input: { echo: 'marco' }, priority: 'normal' });
    const job = await stack.waitForJob(r.json.id, alice);
    expect(job.state).toBe('completed');
    expect(job.result).toMatchObject({ echo: 'marco', attempt: 1 });
    expect(job.result.worker).toMatch(/:\d+$/);
    expect(job.priority).toBe('normal');
    expect(job.usage).toBeNull();
  });
});

describe('bad input is refused and nothing is enqueued', () => {
  async function queueTotal(): Promise<number> {
    let n = 0;
    for (const q of Object.values(stack.api.jobs.queues)) {
      const c = await q.getJobCounts('wait', 'prioritized', 'active', 'delayed', 'completed', 'failed');
      n += Object.values(c).reduce((a, b) => a + b, 0);
    }
    return n;
  }
  async function ownedRows(user: TestUser): Promise<number> {
    const [row] = await stack.api.db('jobs').where({ owner_id: user.id }).count({ n: '*' });
    return Number(row!.n);
  }

  it.each([
    ['an unknown kind', { kind: 'llm.nope', input: {} }, 'kind'],
    ['a missing input field', { kind: 'llm.chat', input: {} }, 'input.messages'],
    ['a wrong role', { kind: 'llm.chat', input: { messages: [{ role: 'wizard', content: 'x' }] } }, 'input.messages.0.role'],
    [
      'an out-of-range option',
      { kind: 'llm.chat', input: { messages: [{ role: 'user', content: 'x' }], options: { temperature: 9 } } },
      'input.options.temperature',
    ],
    ['an unknown option', { kind: 'llm.chat', input: { messages: [{ role: 'user', content: 'x' }], options: { tempreature: 0.5 } } }, 'input.options'],
    ['an unknown priority', { kind: 'system.ping', input: {}, priority: 'urgent' }, 'priority'],
    ['an extra envelope field', { kind: 'system.ping', input: {}, hack: true }, '(root)'],
  ])('refuses %s with 400 problem+json naming the field', async (_name, body, path) => {
    const before = { q: await queueTotal(), rows: await ownedRows(alice) };
    const r = await submit(body);
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toContain('application/problem+json');
    expect(r.json.code).toBe('VALIDATION_FAILED');
    expect(r.json.requestId).toBeTruthy();
    expect(r.json.errors.map((e: { path: string }) => e.path)).toContain(path);
    expect(await queueTotal()).toBe(before.q);
    expect(await ownedRows(alice)).toBe(before.rows);
  });

  it('refuses a non-JSON body with 415 and writes nothing', async () => {
    const before = await ownedRows(alice);
    const r = await stack.request('POST', '/v1/jobs', { user: alice, body: 'kind=system.ping', headers: { 'content-type': 'text/plain' } });
    expect(r.status).toBe(415);
    expect(r.json.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(await ownedRows(alice)).toBe(before);
  });

  it('refuses malformed JSON with 400 MALFORMED_BODY', async () => {
    const r = await stack.request('POST', '/v1/jobs', { user: alice, body: '{"kind": "system.ping", ', headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('MALFORMED_BODY');
    expect(r.json.detail).toBe('The body is not valid JSON');
    expect(r.text).not.toMatch(/at .*\.(ts|js):\d+/);
  });

  it('lists jobs since a moment given with any RFC 3339 offset (+22:22 reached Postgres as is: 500)', async () => {
    const r = await stack.request('GET', `/v1/jobs?since=${encodeURIComponent('2001-01-01T00:00:00+22:22')}&limit=1`, { user: alice });
    expect(r.status, r.text).toBe(200);
    const late = await stack.request('GET', `/v1/jobs?since=${encodeURIComponent('9999-01-01T00:00:00+22:22')}`, { user: alice });
    expect(late.status, late.text).toBe(200);
    expect(late.json.items).toEqual([]);
  });

  it('refuses a body whose bytes are not valid UTF-8 with 400 MALFORMED_BODY, recording nothing', async () => {
    const before = await ownedRows(alice);
    const body = Buffer.concat([Buffer.from('{"kind":"system.ping","input":{"echo":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}}')]);
    const r = await fetch(`${stack.base}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${alice.token}` },
      body,
    });
    const json = (await r.json()) as { code: string; detail: string };
    expect(r.status).toBe(400);
    expect(json).toMatchObject({ code: 'MALFORMED_BODY', detail: 'The body is not valid UTF-8' });
    expect(await ownedRows(alice)).toBe(before);
  });

  it.each([
    ['null', 'null'],
    ['42', 'a number'],
    ['"hi"', 'a string'],
    ['true', 'a boolean'],
  ])('refuses a body of valid JSON that is not an object (%s) with 400 MALFORMED_BODY saying so', async (body, what) => {
    const before = await ownedRows(alice);
    const r = await stack.request('POST', '/v1/jobs', { user: alice, body, headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('MALFORMED_BODY');
    expect(r.json.detail).toBe(`The body must be a JSON object; this one is JSON, but ${what}`);
    expect(await ownedRows(alice)).toBe(before);
  });
});

describe('idempotency keys', () => {
  it('returns the same job for a repeated key and body, and runs it once', async () => {
    const key = `k-${Date.now()}-${Math.random()}`;
    const body = { kind: 'system.ping', input: { echo: 'once' } };
    const a = await submit(body, { 'idempotency-key': key });
    const b = await submit(body, { 'idempotency-key': key });
    expect(a.status).toBe(202);
    expect(b.status).toBe(202);
    expect(b.json.id).toBe(a.json.id);
    expect(b.headers.get('idempotent-replayed')).toBe('true');
    await stack.waitForJob(a.json.id, alice);
    const [row] = await stack.api.db('jobs').where({ owner_id: alice.id, idempotency_key: key }).count({ n: '*' });
    expect(Number(row!.n)).toBe(1);
  });

  it('accepts the key in the body as well as the header', async () => {
    const key = `kb-${Date.now()}`;
    const a = await submit({ kind: 'system.ping', input: {}, idempotencyKey: key });
    const b = await submit({ kind: 'system.ping', input: {} }, { 'idempotency-key': key });
    expect(b.json.id).toBe(a.json.id);
  });

  it('answers 409 when the same key comes with a different body', async () => {
    const key = `kc-${Date.now()}`;
    await submit({ kind: 'system.ping', input: { echo: 'a' } }, { 'idempotency-key': key });
    const r = await submit({ kind: 'system.ping', input: { echo: 'b' } }, { 'idempotency-key': key });
    expect(r.status).toBe(409);
    expect(r.json.code).toBe('IDEMPOTENCY_CONFLICT');
  });

  it('scopes keys per user', async () => {
    const bob = await stack.user('member');
    const key = `ku-${Date.now()}`;
    const a = await submit({ kind: 'system.ping', input: {} }, { 'idempotency-key': key });
    const b = await submit({ kind: 'system.ping', input: {} }, { 'idempotency-key': key }, bob);
    expect(b.json.id).not.toBe(a.json.id);
  });
});

describe('reading jobs', () => {
  it('lists own jobs from Postgres filtered by kind and state, with cursor pagination', async () => {
    const carol = await stack.user('member');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await submit({ kind: 'system.ping', input: { echo: String(i) } }, {}, carol)).json.id);
    for (const id of ids) await stack.waitForJob(id, carol);
    const page1 = await stack.request('GET', '/v1/jobs?kind=system.ping&state=completed&limit=2', { user: carol });
    expect(page1.status).toBe(200);
    expect(page1.json.items).toHaveLength(2);
    const seen = [...page1.json.items];
    let cursor = page1.json.nextCursor;
    while (cursor) {
      const p = await stack.request('GET', `/v1/jobs?kind=system.ping&state=completed&limit=2&cursor=${cursor}`, { user: carol });
      seen.push(...p.json.items);
      cursor = p.json.nextCursor;
    }
    expect(seen.map((j) => j.id).sort()).toEqual([...ids].sort());
    expect(new Set(seen.map((j) => j.owner))).toEqual(new Set([carol.id]));
    const none = await stack.request('GET', '/v1/jobs?state=failed', { user: carol });
    expect(none.json.items).toHaveLength(0);
  });

  it('answers a GET of a finished job from the record after Redis forgot it, with an ETag', async () => {
    const r = await submit({ kind: 'system.ping', input: { echo: 'durable' } });
    await stack.waitForJob(r.json.id, alice);
    for (const q of Object.values(stack.api.jobs.queues)) await q.obliterate({ force: true });
    await stack.api.redis.del(stack.api.keys.jobStream(r.json.id));
    const g = await stack.request('GET', `/v1/jobs/${r.json.id}`, { user: alice });
    expect(g.status).toBe(200);
    expect(g.json.result.echo).toBe('durable');
    const etag = g.headers.get('etag')!;
    const again = await stack.request('GET', `/v1/jobs/${r.json.id}`, { user: alice, headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    // RFC 9110: a list of tags matches if any does (weakly), and * matches any current answer.
    const status = async (value: string) => (await stack.request('GET', `/v1/jobs/${r.json.id}`, { user: alice, headers: { 'if-none-match': value } })).status;
    expect(await status(`"other", ${etag}`)).toBe(304);
    expect(await status(etag.replace(/^W\//, ''))).toBe(304);
    expect(await status('*')).toBe(304);
    expect(await status('"other", W/"another"')).toBe(200);
  });

  it('answers a GET with If-None-Match 200 and a new ETag once the progress moved (regression: the ETag ignored progress, so a poller got 304 until the job finished)', async () => {
    const r = await submit({ kind: 'system.ping', input: { echo: 'moving', holdMs: 8000 } });
    const url = `/v1/jobs/${r.json.id}`;
    let first = await stack.request('GET', url, { user: alice });
    while (first.json.progress === null) {
      await new Promise((res) => setTimeout(res, 100));
      first = await stack.request('GET', url, { user: alice });
    }
    expect(first.json.state).toBe('active');
    const etag = first.headers.get('etag')!;
    let next = await stack.request('GET', url, { user: alice, headers: { 'if-none-match': etag } });
    while (next.status === 304) {
      expect(next.headers.get('etag')).toBe(etag);
      await new Promise((res) => setTimeout(res, 100));
      next = await stack.request('GET', url, { user: alice, headers: { 'if-none-match': etag } });
    }
    expect(next.status).toBe(200);
    // The next answer is the progress moving on, while the job still runs: not the finish.
    expect(next.json.state).toBe('active');
    expect(next.json.progress.heldMs).toBeGreaterThan(first.json.progress.heldMs);
    expect(next.headers.get('etag')).not.toBe(etag);
    expect((await stack.request('GET', url, { user: alice, headers: { 'if-none-match': next.headers.get('etag')! } })).status).toBe(304);
  });

  it('answers 404 problem+json for an unknown job id and 400 for a malformed one', async () => {
    const missing = await stack.request('GET', '/v1/jobs/00000000-0000-4000-8000-00000000abcd', { user: alice });
    expect(missing.status).toBe(404);
    expect(missing.json.code).toBe('JOB_NOT_FOUND');
    const bad = await stack.request('GET', '/v1/jobs/not-a-uuid', { user: alice });
    expect(bad.status).toBe(400);
    expect(bad.json.errors[0].path).toBe('params.id');
  });
});

describe('failures', () => {
  it('records an upstream rejection as failed without retrying, and retries it on request', async () => {
    // Installed, but an embedding model: Ollama answers 400 "does not support chat".
    const r = await submit({ kind: 'llm.chat', input: { model: 'all-minilm', messages: [{ role: 'user', content: 'x' }] } });
    const job = await stack.waitForJob(r.json.id, alice);
    expect(job.state).toBe('failed');
    expect(job.error.code).toBe('UPSTREAM_REJECTED');
    expect(job.attempts).toBe(1);
    const retry = await stack.request('POST', `/v1/jobs/${r.json.id}/retry`, { user: alice });
    expect(retry.status).toBe(202);
    expect(retry.json.state).toBe('queued');
    const again = await stack.waitForJob(r.json.id, alice);
    expect(again.state).toBe('failed');
    expect(again.attempts).toBe(2);
  });

  // Regression: Ollama answers a `format` schema it cannot compile with an error inside a 200 stream, which was
  // taken for an upstream fault: retried 3 times, then UPSTREAM_UNAVAILABLE naming the internal Ollama URL.
  it('fails an llm.chat whose format schema Ollama cannot compile as UPSTREAM_REJECTED, at once, naming no host', async () => {
    const r = await submit({
      kind: 'llm.chat',
      input: { format: { type: 'object', properties: { a: { $ref: '#' } } }, messages: [{ role: 'user', content: 'x' }], options: { num_predict: 4 } },
    });
    expect(r.status).toBe(202);
    const job = await stack.waitForJob(r.json.id, alice);
    expect(job.state).toBe('failed');
    expect(job.error.code).toBe('UPSTREAM_REJECTED');
    expect(job.error.message).toMatch(/invalid JSON schema in format/);
    expect(job.attempts).toBe(1);
    for (const host of stack.api.config.ollama.hosts) expect(JSON.stringify(job.error)).not.toContain(new URL(host).host);
  });

  it('refuses to retry a completed job with 409', async () => {
    const r = await submit({ kind: 'system.ping', input: {} });
    await stack.waitForJob(r.json.id, alice);
    const retry = await stack.request('POST', `/v1/jobs/${r.json.id}/retry`, { user: alice });
    expect(retry.status).toBe(409);
    expect(retry.json.code).toBe('INVALID_STATE');
  });
});
