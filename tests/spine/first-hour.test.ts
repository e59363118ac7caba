/**
 * What cost a new user time in their first hour (issue: the first run), each
 * pinned: the answers must say what to do next.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';

let stack: Stack;
let member: TestUser;

beforeAll(async () => {
  stack = await startStack({ workers: false });
  member = await stack.user('member');
});

afterAll(async () => {
  await stack?.stop();
});

describe('answers that say what to do next', () => {
  it('a 401 without a token says how to send one', async () => {
    const r = await stack.request('GET', '/v1/jobs');
    expect(r.status).toBe(401);
    expect(r.json.detail).toMatch(/Authorization: Bearer/);
  });

  it('the queue board without a token mentions ?token=', async () => {
    const r = await stack.request('GET', '/admin/queues');
    expect(r.status).toBe(401);
    expect(r.json.detail).toContain('?token=');
  });

  it('an internal job kind is refused as internal, not as unknown', async () => {
    const r = await stack.request('POST', '/v1/jobs', { user: member, body: { kind: 'discussion.turn', input: {} } });
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('VALIDATION_FAILED');
    expect(r.json.detail).toMatch(/internal job kind/);
    expect(r.json.errors[0].message).not.toContain('discussion.turn');
  });

  it('a misspelt field names the one the schema takes', async () => {
    const r = await stack.request('POST', '/v1/agents', { user: member, body: { name: 'Typo', persona: 'p', parameters: {} } });
    expect(r.status).toBe(400);
    expect(r.json.errors).toEqual([expect.objectContaining({ message: expect.stringContaining('did you mean "params"?') })]);
  });

  it('a misspelt query parameter is refused with the one it meant, not ignored', async () => {
    const r = await stack.request('GET', '/v1/jobs?kinds=llm.chat', { user: member });
    expect(r.status).toBe(400);
    expect(r.json.errors[0].message).toContain('did you mean "kind"?');
  });

  it('a required field sent under a near-miss name says which one it meant', async () => {
    const r = await stack.request('POST', '/v1/jobs', { user: member, body: { kind: 'llm.chat', input: { mesages: [{ role: 'user', content: 'x' }] } } });
    expect(r.status).toBe(400);
    expect(r.json.errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: 'input.messages', message: expect.stringContaining('"mesages" instead; did you mean "messages"?') }),
      ]),
    );
  });

  it('a misspelt key inside a job input is refused naming the one it meant, not dropped (it ran with no num_predict bound)', async () => {
    const r = await stack.request('POST', '/v1/jobs', {
      user: member,
      body: { kind: 'llm.chat', input: { messages: [{ role: 'user', content: 'x' }], option: { num_predict: 2 } } },
    });
    expect(r.status, r.text).toBe(400);
    expect(r.json.code).toBe('VALIDATION_FAILED');
    expect(r.json.errors).toEqual([expect.objectContaining({ path: 'input', message: expect.stringContaining('"option" (did you mean "options"?)') })]);
  });

  it('a misspelt key inside a chat message is refused too', async () => {
    const r = await stack.request('POST', '/v1/jobs', { user: member, body: { kind: 'llm.chat', input: { messages: [{ role: 'user', contnet: 'x' }] } } });
    expect(r.status, r.text).toBe(400);
    expect(r.json.errors).toEqual(
      expect.arrayContaining([expect.objectContaining({ path: 'input.messages.0', message: expect.stringContaining('"contnet" (did you mean "content"?)') })]),
    );
  });

  it('a misspelt key inside a knowledge source is refused, not dropped', async () => {
    const r = await stack.request('POST', '/v1/knowledge/sources', {
      user: member,
      body: { source: { kind: 'conversation', title: 't', messages: [{ id: 'm1', speaker: 'Ada', text: 'Hi.', replyto: 'm0' }] } },
    });
    expect(r.status, r.text).toBe(400);
    expect(r.json.errors).toEqual(
      expect.arrayContaining([expect.objectContaining({ message: expect.stringContaining('"replyto" (did you mean "replyTo"?)') })]),
    );
  });

  it('an invalid path parameter says so in words', async () => {
    const r = await stack.request('GET', '/v1/jobs/not-a-uuid', { user: member });
    expect(r.status).toBe(400);
    expect(r.json.detail).toBe('The path parameters are not valid');
  });
});

describe('security headers over plain HTTP', () => {
  it('sends no HSTS and no upgrade-insecure-requests, on the API and on /docs', async () => {
    for (const path of ['/healthz', '/docs/']) {
      const r = await fetch(`${stack.base}${path}`);
      expect(r.headers.get('strict-transport-security'), path).toBeNull();
      expect(r.headers.get('content-security-policy') ?? '', path).not.toContain('upgrade-insecure-requests');
      expect(r.headers.get('x-content-type-options'), path).toBe('nosniff');
    }
  });

  it('sends both when a trusted proxy says the request came over TLS', async () => {
    const tls = await startStack({ workers: false, env: { PARLEY_TRUST_PROXY: '1' } });
    try {
      const r = await fetch(`${tls.base}/healthz`, { headers: { 'x-forwarded-proto': 'https' } });
      expect(r.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);
      expect(r.headers.get('content-security-policy')).toContain('upgrade-insecure-requests');
    } finally {
      await tls.stop();
    }
  });
});
