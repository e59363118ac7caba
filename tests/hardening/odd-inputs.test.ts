/**
 * Inputs a real client can send that once reached a store it could not take:
 * a year Postgres lacks (0000), an offset that carries 9999-12-31 into year
 * 10000, list cursors whose parts only looked right. Each is a 400 naming the
 * field, never a 500.
 */
import { connect as netConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { rawRequest } from '../auth/helpers.ts';

let stack: Stack;
let member: TestUser;
let admin: TestUser;

beforeAll(async () => {
  stack = await startStack({ workers: false });
  [member, admin] = await Promise.all([stack.user('member'), stack.user('admin')]);
});
afterAll(() => stack?.stop());

const b64 = (s: string) => Buffer.from(s).toString('base64url');

function expect400(r: { status: number; json: any; text: string }, path: string) {
  expect(r.status, r.text).toBe(400);
  expect(r.json.code).toBe('VALIDATION_FAILED');
  expect(r.json.errors.map((e: { path: string }) => e.path)).toContain(path);
}

describe('instants outside the years 0001-9999', () => {
  it('are refused wherever an instant is taken', async () => {
    const early = '0000-01-01T00:00:00Z';
    const late = '9999-12-31T23:59:59-23:59';
    expect400(await stack.request('GET', `/v1/jobs?since=${early}`, { user: member }), 'query.since');
    expect400(await stack.request('GET', `/v1/jobs?until=${encodeURIComponent(late)}`, { user: member }), 'query.until');
    expect400(await stack.request('GET', `/v1/admin/audit?since=${early}`, { user: admin }), 'query.since');
    expect400(await stack.request('POST', '/v1/auth/api-keys', { user: member, body: { name: 'k', expiresAt: late } }), 'expiresAt');
    expect400(await stack.request('GET', '/v1/usage?to=0000-01-01', { user: member }), 'query.to');
    // The last instants that exist still work.
    expect((await stack.request('GET', `/v1/jobs?until=${encodeURIComponent('9999-12-31T23:59:59Z')}`, { user: member })).status).toBe(200);
    expect((await stack.request('GET', `/v1/jobs?since=${encodeURIComponent('0001-01-01T00:00:00Z')}`, { user: member })).status).toBe(200);
  });

  it('never make the default usage range start before the first day there is', async () => {
    const r = await stack.request('GET', '/v1/usage?to=0001-01-05', { user: member });
    expect(r.status, r.text).toBe(200);
  });
});

describe('list cursors', () => {
  it('are read back only as this API writes them', async () => {
    for (const raw of [
      '1|00000000-0000-0000-0000-000000000000',
      '2024-01-01T00:00:00Z|------------------------------------',
      '+275760-09-13T00:00:00.000Z|6f1c0e0e-8a2b-4c1d-9e3f-0a1b2c3d4e5f',
      '0000-01-01T00:00:00.000Z|6f1c0e0e-8a2b-4c1d-9e3f-0a1b2c3d4e5f',
    ]) {
      expect400(await stack.request('GET', `/v1/jobs?cursor=${b64(raw)}`, { user: member }), 'query.cursor');
      expect400(await stack.request('GET', `/v1/discussions?cursor=${b64(raw)}`, { user: member }), 'query.cursor');
    }
  });

  it('page through a list as given out', async () => {
    for (let i = 0; i < 3; i++) await stack.request('POST', '/v1/jobs', { user: member, body: { kind: 'system.ping', input: { echo: `p${i}` } } });
    const first = await stack.request('GET', '/v1/jobs?limit=2', { user: member });
    expect(first.json.nextCursor).toBeTruthy();
    const second = await stack.request('GET', `/v1/jobs?limit=2&cursor=${first.json.nextCursor}`, { user: member });
    expect(second.status).toBe(200);
    expect(second.json.items.length).toBeGreaterThan(0);
  });
});

describe('paging through rows of one millisecond', () => {
  // Postgres keeps microseconds, and rows written together share an instant; a cursor cut to the millisecond skipped them.
  const sameMillisecond = (i: number) => `2026-06-01T12:00:00.123${String(100 + (i % 4)).slice(1)}Z`;
  const pageAll = async (path: string, user: TestUser) => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r = await stack.request('GET', `${path}${path.includes('?') ? '&' : '?'}limit=2${cursor ? `&cursor=${cursor}` : ''}`, { user });
      expect(r.status, r.text).toBe(200);
      seen.push(...r.json.items.map((x: { id: string }) => x.id));
      cursor = r.json.nextCursor;
    } while (cursor);
    return seen;
  };

  it('gives every job once', async () => {
    const user = await stack.user('member');
    const ids: string[] = [];
    for (let i = 0; i < 9; i++) ids.push((await stack.request('POST', '/v1/jobs', { user, body: { kind: 'system.ping', input: {} } })).json.id);
    for (const [i, id] of ids.entries())
      await stack.api
        .db('jobs')
        .where({ id })
        .update({ queued_at: sameMillisecond(i) });
    const seen = await pageAll('/v1/jobs', user);
    expect(seen.sort()).toEqual([...ids].sort());
  });

  it('gives every room once', async () => {
    const user = await stack.user('member');
    const agents = [];
    for (const name of ['Pa', 'Pb']) agents.push((await stack.request('POST', '/v1/agents', { user, body: { name, persona: 'You page.' } })).json.id);
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await stack.request('POST', '/v1/discussions', { user, body: { topic: `Page ${i}`, agentIds: agents } })).json.id);
    for (const [i, id] of ids.entries())
      await stack.api
        .db('discussions')
        .where({ id })
        .update({ created_at: sameMillisecond(i) });
    // The list also holds other users' public rooms: each of these exactly once among them.
    const seen = await pageAll('/v1/discussions', user);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.filter((id) => ids.includes(id)).sort()).toEqual([...ids].sort());
  });
});

describe('URLs', () => {
  it('answer a malformed percent-escape in a path with a 400 about the URL, not the body', async () => {
    for (const path of ['/v1/jobs/%zz', '/v1/models/a%']) {
      const r = await stack.request('GET', path, { user: admin });
      expect(r.status, r.text).toBe(400);
      expect(r.json.code).toBe('VALIDATION_FAILED');
      expect(r.json.errors).toEqual([{ path: 'params', message: 'not valid percent-encoding' }]);
    }
  });
});

describe('body charsets', () => {
  const agent = (contentType: string, body: string | Buffer) =>
    rawRequest(stack, 'POST', '/v1/agents', { body, headers: { ...member.auth, 'content-type': contentType } });

  it('refuse every charset but UTF-8 with a 415 before parsing, so no encoding can smuggle markup past a proxy', async () => {
    // UTF-7 would decode `+ADw-` to `<`: a persona a proxy saw as plain text.
    const utf7 = '{"name":"u7","persona":"+ADw-script+AD4-alert(1)+ADw-/script+AD4-"}';
    for (const [type, body] of [
      ['application/json; charset=utf-7', utf7],
      ['application/json; charset="UTF-16LE"', Buffer.from('{"name":"u16","persona":"p"}', 'utf16le')],
      ['application/json;charset=utf-32', '{"name":"u32","persona":"p"}'],
      ['application/json; charset=iso-8859-1', '{"name":"l1","persona":"p"}'],
    ] as const) {
      const r = await agent(type, body);
      expect(r.status, `${type}: ${r.text}`).toBe(415);
      expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(JSON.parse(r.text).code).toBe('UNSUPPORTED_MEDIA_TYPE');
    }
    const names = (await stack.request('GET', '/v1/agents', { user: member })).json.items.map((a: { name: string }) => a.name);
    expect(names).not.toContain('u7');
    // UTF-8, named or not, is taken.
    expect((await agent('application/json; charset=UTF-8', '{"name":"u8","persona":"p"}')).status).toBe(201);
    expect((await agent('application/json', '{"name":"plain","persona":"p"}')).status).toBe(201);
    // A request without a body that names a charset anyway (some clients set one on every request) is not refused.
    const get = await rawRequest(stack, 'GET', '/v1/agents', { headers: { ...member.auth, 'content-type': 'application/json; charset=iso-8859-1' } });
    expect(get.status).toBe(200);
  });

  it('refuse another charset at the token endpoint too, in its OAuth shape', async () => {
    const r = await rawRequest(stack, 'POST', '/v1/auth/token', {
      body: `grant_type=password&username=${member.username}&password=x`,
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=ISO-8859-1' },
    });
    expect(r.status).toBe(415);
    expect(JSON.parse(r.text)).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE' });
  });
});

describe('headers that may appear once', () => {
  it('are a 400 naming them when sent twice, not the first copy winning', async () => {
    const other = await stack.user('member');
    const twice = await rawRequestWithRawHeaders('GET', '/v1/auth/me', ['Authorization', member.auth.authorization, 'Authorization', other.auth.authorization]);
    expect(twice.status).toBe(400);
    expect(JSON.parse(twice.text).errors).toEqual([{ path: 'headers.authorization', message: 'sent more than once' }]);
    const types = await rawRequestWithRawHeaders(
      'POST',
      '/v1/agents',
      ['Authorization', member.auth.authorization, 'Content-Type', 'application/json', 'content-type', 'text/plain'],
      '{"name":"twice","persona":"p"}',
    );
    expect(types.status).toBe(400);
    expect(JSON.parse(types.text).errors[0].path).toBe('headers.content-type');
    // Once each is fine.
    expect((await rawRequestWithRawHeaders('GET', '/v1/auth/me', ['Authorization', member.auth.authorization])).status).toBe(200);
  });
});

/** A request whose header lines are sent exactly as given (node:http joins or drops repeats). */
function rawRequestWithRawHeaders(method: string, path: string, headers: string[], body = ''): Promise<{ status: number; text: string }> {
  const url = new URL(stack.base);
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${url.host}`, 'Connection: close', `Content-Length: ${Buffer.byteLength(body)}`];
  for (let i = 0; i < headers.length; i += 2) lines.push(`${headers[i]}: ${headers[i + 1]}`);
  return new Promise((resolve, reject) => {
    const socket = netConnect(Number(url.port), url.hostname, () => socket.write(`${lines.join('\r\n')}\r\n\r\n${body}`));
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString();
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      // The body: after the head; chunked framing stripped for JSON bodies.
      const rest = text.slice(text.indexOf('\r\n\r\n') + 4);
      const json = rest.slice(rest.indexOf('{'), rest.lastIndexOf('}') + 1);
      resolve({ status, text: json });
    });
  });
}

describe('requests Node cannot parse', () => {
  /** Raw bytes in, the status line and body out. */
  const send = (bytes: string) =>
    new Promise<{ status: number; type: string; body: any }>((resolve, reject) => {
      const url = new URL(stack.base);
      const socket = netConnect(Number(url.port), url.hostname, () => socket.write(bytes));
      const chunks: Buffer[] = [];
      socket.on('data', (c) => chunks.push(c));
      socket.on('error', reject);
      socket.on('close', () => {
        const text = Buffer.concat(chunks).toString();
        const [head = '', body = ''] = text.split('\r\n\r\n');
        resolve({
          status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0),
          type: /content-type: ([^\r\n]*)/i.exec(head)?.[1] ?? '',
          body: body ? JSON.parse(body) : null,
        });
      });
    });

  it('answer with a problem and its code, like every other refusal', async () => {
    for (const bytes of [
      'GARBAGE\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n',
      'POST /v1/agents HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ]) {
      const r = await send(bytes);
      expect(r.status, bytes).toBe(400);
      expect(r.type).toBe('application/problem+json');
      expect(r.body).toMatchObject({ status: 400, code: 'MALFORMED_REQUEST' });
    }
    const big = await send(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(big.status).toBe(431);
    expect(big.body).toMatchObject({ status: 431, code: 'HEADERS_TOO_LARGE' });
  });
});
