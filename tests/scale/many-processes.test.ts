/**
 * Many processes on one Redis and one Postgres, as a deployment runs them:
 * 2 API processes and 3 worker processes, all real child processes sharing a
 * key prefix. Workers 1 and 2 serve every queue but `llm`; worker 3 serves
 * `llm` alone (PARLEY_WORKER_QUEUES), so which process runs a job is known.
 *
 * - a client on API 1 streams a chat job submitted through API 2 and run by worker 3;
 * - a Socket.IO client moves from API 1 to API 2 mid-stream: no gap, no duplicate;
 * - the worker holding a job is SIGKILLed mid-stream: another finishes it, one terminal event;
 * - a cancel sent to either API process reaches the job;
 * - rate limits and session revocation hold across API processes, and a revocation
 *   on API 1 ends the session's socket on API 2 through the Socket.IO Redis adapter.
 */
import { randomUUID } from 'node:crypto';
import { io as connect, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSse, startStack, type Stack, type TestUser } from '../harness.ts';
import { killAll, startProcess, type ParleyProcess } from '../support/processes.ts';

let stack: Stack;
let user: TestUser;
let api1: ParleyProcess;
let api2: ParleyProcess;
let worker1: ParleyProcess;
let worker2: ParleyProcess;
let worker3: ParleyProcess;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  // The in-process stack only makes users (Postgres is shared); the processes under test are children.
  stack = await startStack({ workers: false });
  user = await stack.user('member');
  env = {
    ...stack.env,
    PARLEY_KEY_PREFIX: `t${randomUUID().slice(0, 8)}`,
    PARLEY_LOCK_MS: '2000',
    PARLEY_STALLED_INTERVAL_MS: '1000',
    PARLEY_SWEEP_INTERVAL_MS: '500',
    PARLEY_RATE_JOBS_WRITE: 'member=40',
  };
  const others = { ...env, PARLEY_WORKER_QUEUES: 'system,code,code-batch,embed,models' };
  [api1, api2] = await Promise.all([startProcess('api', env, 'api-1'), startProcess('api', env, 'api-2')]);
  [worker1, worker2, worker3] = await Promise.all([
    startProcess('workers', others, 'worker-1'),
    startProcess('workers', others, 'worker-2'),
    startProcess('workers', { ...env, PARLEY_WORKER_QUEUES: 'llm' }, 'worker-3'),
  ]);
}, 180_000);
afterAll(async () => {
  await killAll();
  await stack?.stop();
});

async function post(api: ParleyProcess, path: string, body: unknown, u: TestUser = user) {
  const r = await fetch(`${api.base}${path}`, { method: 'POST', headers: { ...u.auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, json: (await r.json().catch(() => undefined)) as any };
}
const get = async (api: ParleyProcess, path: string, u: TestUser = user) => {
  const r = await fetch(`${api.base}${path}`, { headers: u.auth });
  return { status: r.status, json: (await r.json().catch(() => undefined)) as any };
};
async function waitState(api: ParleyProcess, id: string, states: string[], timeoutMs = 90_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const j = (await get(api, `/v1/jobs/${id}`)).json;
    if (states.includes(j?.state)) return j;
    if (Date.now() > deadline) throw new Error(`job ${id} not ${states.join('|')} in time: ${JSON.stringify(j)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const chat = (n: number) => ({
  kind: 'llm.chat',
  input: { messages: [{ role: 'user', content: 'Tell a long story about a fox and a crow.' }], options: { num_predict: n, temperature: 0.8 } },
});
const ranOn = (id: string) => [worker1, worker2, worker3].filter((w) => w.lines.some((l) => l.msg === 'job started' && l.jobId === id)).map((w) => w.name);

describe('2 API processes and 3 worker processes', () => {
  it('a client on API 1 streams a job submitted through API 2 and run by worker 3', async () => {
    const r = await post(api2, '/v1/jobs', chat(24));
    expect(r.status).toBe(202);
    const sse = await readSse(`${api1.base}/v1/jobs/${r.json.id}/events`, user.auth, { timeoutMs: 240_000 });
    expect(sse.status).toBe(200);
    const tokens = sse.events.filter((e) => e.event === 'tokens');
    expect(tokens.length).toBeGreaterThan(0);
    const finished = sse.events.at(-1)!;
    expect(finished).toMatchObject({ event: 'finished', data: { state: 'completed' } });
    expect(tokens.map((e) => e.data.text).join('')).toBe(finished.data.result.text);
    expect(sse.events.map((e) => e.id)).toEqual(sse.events.map((_, i) => i + 1));
    expect(ranOn(r.json.id)).toEqual(['worker-3']);
  }, 300_000);

  it('a Socket.IO client that moves from API 1 to API 2 mid-stream gets every event once, in order', async () => {
    const r = await post(api1, '/v1/jobs', chat(48));
    const id = r.json.id as string;
    const room = `job:${id}`;
    const seen: { seq: number; event: string; text?: string }[] = [];
    let text = '';
    let lastSeq = 0;
    const listen = (socket: Socket, onEvent: () => void) => {
      for (const event of ['tokens', 'progress', 'reset', 'finished']) {
        socket.on(event, (e: { room: string; seq: number; text?: string }) => {
          expect(e.room).toBe(room);
          seen.push({ seq: e.seq, event, text: e.text });
          lastSeq = e.seq;
          if (event === 'tokens') text += e.text;
          if (event === 'reset') text = '';
          onEvent();
        });
      }
    };
    const subscribe = (socket: Socket) =>
      new Promise<void>((resolve, reject) => {
        socket.on('connect', () =>
          socket.emit('subscribe', { room, lastSeq }, (ack: { ok: boolean; error?: unknown }) =>
            ack.ok ? resolve() : reject(new Error(JSON.stringify(ack.error))),
          ),
        );
        socket.on('connect_error', reject);
      });
    const first = connect(api1.base, { path: '/socket.io', auth: { token: user.token }, transports: ['websocket'], reconnection: false });
    const moved = new Promise<void>((resolve) => listen(first, () => seen.length === 8 && resolve()));
    await subscribe(first);
    await moved;
    first.disconnect();
    const onFirst = seen.length;
    // Tokens keep coming while no socket listens; the second process resumes after the last seq seen.
    await new Promise((res) => setTimeout(res, 500));
    const second = connect(api2.base, { path: '/socket.io', auth: { token: user.token }, transports: ['websocket'], reconnection: false });
    const done = new Promise<void>((resolve) => listen(second, () => seen.at(-1)!.event === 'finished' && resolve()));
    await subscribe(second);
    await done;
    second.close();
    expect(onFirst).toBeGreaterThanOrEqual(8);
    expect(seen.length).toBeGreaterThan(onFirst);
    expect(seen.map((e) => e.seq)).toEqual(seen.map((_, i) => i + 1));
    const job = (await get(api2, `/v1/jobs/${id}`)).json;
    expect(job.state).toBe('completed');
    expect(text).toBe(job.result.text);
  }, 300_000);

  it('a job whose worker is SIGKILLed mid-stream finishes on another worker, with one terminal event', async () => {
    const r = await post(api1, '/v1/jobs', { kind: 'system.ping', input: { echo: 'survivor', holdMs: 3000 } });
    const id = r.json.id as string;
    const sse = readSse(`${api2.base}/v1/jobs/${id}/events`, user.auth, { timeoutMs: 60_000 });
    await readSse(`${api1.base}/v1/jobs/${id}/events`, user.auth, { timeoutMs: 30_000, stopAfter: (e) => e.event === 'progress' });
    const [holder] = [worker1, worker2].filter((w) => w.lines.some((l) => l.msg === 'job started' && l.jobId === id));
    expect(holder).toBeDefined();
    await holder!.kill('SIGKILL');
    const { events } = await sse;
    expect(events.filter((e) => e.event === 'finished')).toHaveLength(1);
    expect(events.at(-1)!.data).toMatchObject({ state: 'completed', result: { echo: 'survivor' } });
    expect(events.map((e) => `${e.event}:${e.data.attempt}`)).toContain('reset:2');
    const seqs = events.map((e) => e.id);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    const job = (await get(api2, `/v1/jobs/${id}`)).json;
    expect(job).toMatchObject({ state: 'completed', attempts: 2 });
    const survivor = holder === worker1 ? worker2 : worker1;
    expect(survivor.lines.find((l) => l.msg === 'job finished' && l.jobId === id)).toMatchObject({ state: 'completed', attempt: 2 });
    // Bring the fleet back to three workers for the tests after this one.
    const replacement = await startProcess('workers', { ...env, PARLEY_WORKER_QUEUES: 'system,code,code-batch,embed,models' }, holder!.name);
    if (holder === worker1) worker1 = replacement;
    else worker2 = replacement;
  });

  it('a cancel sent to either API process reaches the job on its worker', async () => {
    for (const [submitTo, cancelAt] of [
      [api1, api2],
      [api2, api1],
    ] as const) {
      const r = await post(submitTo, '/v1/jobs', { kind: 'system.ping', input: { holdMs: 10_000 } });
      const id = r.json.id as string;
      await waitState(submitTo, id, ['active']);
      const c = await fetch(`${cancelAt.base}/v1/jobs/${id}`, { method: 'DELETE', headers: user.auth });
      expect([200, 202]).toContain(c.status);
      const job = await waitState(submitTo, id, ['cancelled', 'completed', 'failed']);
      expect(job.state).toBe('cancelled');
      expect(job.error.code).toBe('CANCELLED');
      const holder = [worker1, worker2].find((w) => w.lines.some((l) => l.msg === 'job started' && l.jobId === id))!;
      await holder.waitForLog((l) => l.msg === 'job finished' && l.jobId === id && l.state === 'cancelled');
    }
  });

  it('a rate limit counts the requests every API process took', async () => {
    const member = await stack.user('member');
    const statuses: number[] = [];
    // PARLEY_RATE_JOBS_WRITE is member=40 per window; earlier tests' writes were another user's.
    for (let i = 0; i < 40; i++) statuses.push((await post(i % 2 ? api2 : api1, '/v1/jobs', { kind: 'system.ping', input: {} }, member)).status);
    expect(statuses.every((s) => s === 202)).toBe(true);
    const over1 = await post(api1, '/v1/jobs', { kind: 'system.ping', input: {} }, member);
    const over2 = await post(api2, '/v1/jobs', { kind: 'system.ping', input: {} }, member);
    expect([over1.status, over2.status]).toEqual([429, 429]);
    expect(over2.json.code).toBe('RATE_LIMITED');
  });

  it('a session revoked on API 1 is refused on API 2 at once, and its socket there is ended through the adapter', async () => {
    const member = await stack.user('member');
    const login = await fetch(`${api1.base}/v1/auth/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'password', username: member.username, password: member.password }),
    });
    const { access_token: token } = (await login.json()) as { access_token: string };
    const auth = { authorization: `Bearer ${token}` };
    expect((await fetch(`${api2.base}/v1/auth/me`, { headers: auth })).status).toBe(200);
    const socket = connect(api2.base, { path: '/socket.io', auth: { token }, transports: ['websocket'], reconnection: false });
    await new Promise<void>((resolve, reject) => (socket.on('connect', () => resolve()), socket.on('connect_error', reject)));
    const ended = new Promise<{ code: string; reason?: string }>((resolve) => socket.on('auth_error', resolve));
    const disconnected = new Promise<void>((resolve) => socket.on('disconnect', () => resolve()));
    expect((await fetch(`${api1.base}/v1/auth/logout`, { method: 'POST', headers: auth })).status).toBe(204);
    expect((await fetch(`${api2.base}/v1/auth/me`, { headers: auth })).status).toBe(401);
    // The reason is only in the message the revoking process sends through the adapter; the periodic
    // recheck on API 2 would say "revoked" without one.
    expect(await ended).toMatchObject({ code: 'SESSION_REVOKED', reason: 'logout' });
    await disconnected;
    socket.close();
  });
});
