/**
 * A request that asks to switch protocols (`Connection: Upgrade`) on a path
 * that is not Socket.IO's is answered as the HTTP/1.1 request it also is
 * (RFC 9110 §7.8 lets a server ignore Upgrade). Java's HttpClient asks every
 * plain-http request to upgrade to h2c; each once got an empty reply.
 */
import { connect, type Socket } from 'node:net';
import { io as ioConnect } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';

let stack: Stack;
let member: TestUser;

beforeAll(async () => {
  stack = await startStack({ workers: false });
  member = await stack.user('member');
});
afterAll(() => stack?.stop());

/** Sends raw bytes and reads until the server closes; the status and the body. */
function raw(request: string | Buffer, parts: (string | Buffer)[] = []): Promise<{ status: number; headers: string; body: string }> {
  const url = new URL(stack.base);
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    socket.on('connect', async () => {
      socket.write(request);
      for (const p of parts) {
        await new Promise((r) => setTimeout(r, 50));
        socket.write(p);
      }
    });
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.setTimeout(20_000, () => reject(new Error('no answer, connection still open')));
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString();
      const [head = '', body = ''] = text.split('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), headers: head, body });
    });
  });
}

const h2c = 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n';

describe('Upgrade on plain paths', () => {
  it('answers a GET that asks for h2c as HTTP/1.1 and closes the connection', async () => {
    const r = await raw(`GET /healthz HTTP/1.1\r\nHost: x\r\n${h2c}\r\n`);
    expect(r.status).toBe(200);
    expect(r.headers).toMatch(/connection: close/i);
    const auth = await raw(`GET /v1/auth/me HTTP/1.1\r\nHost: x\r\nAuthorization: ${member.auth.authorization}\r\n${h2c}\r\n`);
    expect(auth.status).toBe(200);
    expect(JSON.parse(auth.body)).toMatchObject({ id: member.id });
  });

  it('reads a body that follows, in the same packet or later', async () => {
    const post = (name: string) => {
      const body = JSON.stringify({ name, persona: 'You are terse.' });
      const head = `POST /v1/agents HTTP/1.1\r\nHost: x\r\nAuthorization: ${member.auth.authorization}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n`;
      return { head, body };
    };
    const one = post('together');
    const together = await raw(one.head + one.body);
    expect(together.status, together.body).toBe(201);
    expect(JSON.parse(together.body).name).toBe('together');
    const two = post('apart');
    const apart = await raw(two.head, [two.body.slice(0, 10), two.body.slice(10)]);
    expect(apart.status, apart.body).toBe(201);
    expect(JSON.parse(apart.body).name).toBe('apart');
  });

  it('refuses what it cannot frame with a problem, not silence', async () => {
    const chunked = await raw(`POST /v1/agents HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n0\r\n\r\n`);
    expect(chunked.status).toBe(411);
    expect(chunked.headers).toMatch(/application\/problem\+json/);
    const huge = await raw(`POST /v1/agents HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n`);
    expect(huge.status).toBe(413);
  });

  it('still upgrades Socket.IO to a WebSocket', async () => {
    const s = ioConnect(stack.base, { path: '/socket.io', auth: { token: member.token }, transports: ['websocket'], reconnection: false });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('connect_error', reject);
    });
    expect(s.io.engine.transport.name).toBe('websocket');
    s.close();
  });
});
