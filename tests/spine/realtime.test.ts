import { io as connect, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSse, startStack, type Stack, type TestUser } from '../harness.ts';

let stack: Stack;
let user: TestUser;

beforeAll(async () => {
  stack = await startStack();
  user = await stack.user('member');
});
afterAll(() => stack?.stop());

const longChat = (n: number) => ({ kind: 'llm.chat', input: { messages: [{ role: 'user', content: 'Tell a long story about a fox and a crow.' }], options: { num_predict: n, temperature: 0.8 } } });

describe('live tokens', () => {
  it('a Socket.IO client that drops mid-stream and reconnects ends with exactly the full text', async () => {
    const r = await stack.request('POST', '/v1/jobs', { user, body: longChat(120) });
    const id = r.json.id as string;
    const socket: Socket = connect(stack.base, { path: '/socket.io', auth: { token: user.token }, transports: ['websocket'], reconnection: false });
    let text = '';
    let lastSeq = 0;
    let drops = 0;
    const seqs: number[] = [];
    const finished = new Promise<any>((resolve) => {
      socket.on('tokens', (e: { room: string; seq: number; text: string }) => {
        expect(e.room).toBe(`job:${id}`);
        seqs.push(e.seq);
        text += e.text;
        lastSeq = e.seq;
        if (drops === 0 && seqs.length === 10) {
          drops += 1;
          socket.disconnect();
          // Stay away while tokens keep coming, then resume from the last seq seen.
          setTimeout(() => socket.connect(), 700);
        }
      });
      socket.on('progress', (e: { seq: number }) => (lastSeq = e.seq));
      socket.on('reset', (e: { seq: number }) => {
        text = '';
        lastSeq = e.seq;
      });
      socket.on('finished', (e: { seq: number; state: string; result: { text: string } }) => resolve(e));
    });
    socket.on('connect', () => {
      socket.emit('subscribe', { room: `job:${id}`, lastSeq }, (ack: { ok: boolean }) => expect(ack.ok).toBe(true));
    });
    const done = await finished;
    socket.close();
    expect(drops).toBe(1);
    expect(done.state).toBe('completed');
    expect(text).toBe(done.result.text);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  });

  it('SSE resumes after Last-Event-ID with no gap and no duplicate', async () => {
    const r = await stack.request('POST', '/v1/jobs', { user, body: longChat(60) });
    const url = `${stack.base}/v1/jobs/${r.json.id}/events`;
    const first = await readSse(url, user.auth, { stopAfter: (e) => e.event === 'tokens' && e.id >= 5 });
    const last = first.events.at(-1)!.id;
    const rest = await readSse(url, { ...user.auth, 'last-event-id': String(last) });
    const all = [...first.events, ...rest.events];
    const ids = all.map((e) => e.id);
    expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => i + 1));
    const job = await stack.waitForJob(r.json.id, user);
    expect(all.filter((e) => e.event === 'tokens').map((e) => e.data.text).join('')).toBe(job.result.text);
    expect(all.at(-1)).toMatchObject({ event: 'finished', data: { state: 'completed' } });
  });

  it('SSE of a finished job whose stream expired replays the final result from the record', async () => {
    const r = await stack.request('POST', '/v1/jobs', { user, body: { kind: 'system.ping', input: { echo: 'late' } } });
    await stack.waitForJob(r.json.id, user);
    await stack.api.redis.del(stack.api.keys.jobStream(r.json.id));
    const sse = await readSse(`${stack.base}/v1/jobs/${r.json.id}/events`, user.auth, { timeoutMs: 5000 });
    expect(sse.events).toHaveLength(1);
    expect(sse.events[0]).toMatchObject({ event: 'finished', data: { state: 'completed', result: { echo: 'late' } } });
  });

  it('many late subscribers of one stream each get every event once, in order', async () => {
    const r = await stack.request('POST', '/v1/jobs', { user, body: longChat(40) });
    const url = `${stack.base}/v1/jobs/${r.json.id}/events`;
    const readers = [readSse(url, user.auth)];
    await new Promise((res) => setTimeout(res, 400));
    readers.push(readSse(url, user.auth), readSse(url, { ...user.auth, 'last-event-id': '2' }));
    const [a, b, c] = await Promise.all(readers);
    expect(b!.events.map((e) => e.id)).toEqual(a!.events.map((e) => e.id));
    expect(c!.events.map((e) => e.id)).toEqual(a!.events.map((e) => e.id).filter((id) => id > 2));
  });
});
