/**
 * SIGTERM of an API process with live connections open: an SSE stream (it
 * never ends by itself while its job waits) and a Socket.IO client. The
 * process stops within its grace period instead of waiting for the clients
 * to leave (docs/operations.md, "Shutdown"); each client sees its connection
 * end and can resume on another API process.
 */
import { io as connect } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { killAll, startProcess } from '../support/processes.ts';

let stack: Stack;
let user: TestUser;

beforeAll(async () => {
  // No workers anywhere: the job stays queued, so its event stream stays open until the API goes.
  stack = await startStack({ workers: false });
  user = await stack.user('member');
});
afterAll(async () => {
  await killAll();
  await stack?.stop();
});

describe('an API process stopped with live connections open', () => {
  it('exits on SIGTERM within its grace, ending its event streams and sockets', async () => {
    const api = await startProcess('api', stack.env);
    const submit = await fetch(`${api.base}/v1/jobs`, {
      method: 'POST',
      headers: { ...user.auth, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'system.ping', input: { echo: 'held' } }),
    });
    expect(submit.status).toBe(202);
    const { id } = (await submit.json()) as { id: string };
    const sse = await fetch(`${api.base}/v1/jobs/${id}/events`, { headers: user.auth });
    expect(sse.status).toBe(200);
    const reader = sse.body!.getReader();
    const streamEnded = (async () => {
      for (;;) if ((await reader.read().catch(() => ({ done: true }))).done) return true;
    })();
    const socket = connect(api.base, { path: '/socket.io', auth: { token: user.token }, transports: ['websocket'], reconnection: false });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', reject);
    });
    const socketEnded = new Promise<true>((r) => socket.once('disconnect', () => r(true)));

    // A process that waited for its clients would never exit here: the test would time out.
    expect(await api.kill('SIGTERM')).toBe(0);
    expect(api.lines.some((l) => l.msg === 'api stopped')).toBe(true);
    expect(await streamEnded).toBe(true);
    expect(await socketEnded).toBe(true);
    socket.close();
  }, 60_000);
});
