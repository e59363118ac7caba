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

/** Resolves once `check` holds, polling; fails after a generous deadline. */
async function until(check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await check());) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

/** The seq of the last event in a job's stream (entry ids are `0-<seq>`), 0 when it is empty. */
async function streamSeq(id: string): Promise<number> {
  const [last] = (await stack.api.redis.xrevrange(stack.api.keys.jobStream(id), '+', '-', 'COUNT', 1)) as [string, string[]][];
  return last ? Number(last[0].split('-')[1]) : 0;
}

const longChat = (n: number) => ({
  kind: 'llm.chat',
  input: { messages: [{ role: 'user', content: 'Tell a long story about a fox and a crow.' }], options: { num_predict: n, temperature: 0.8 } },
});

describe('live tokens', () => {
  it('a Socket.IO client that drops mid-stream and reconnects ends with exactly the full text', async () => {
    const r = await stack.request('POST', '/v1/jobs', { user, body: longChat(120) });
    const id = r.json.id as string;
    const socket: Socket = connect(stack.base, { path: '/socket.io', auth: { token: user.token }, transports: ['websocket'], reconnection: false });
    let text = '';
    let lastSeq = 0;
    let drops = 0;
    let missedWhileAway = false;
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
          // Stay away until the stream has moved on without us, then resume from the last seq seen.
          const away = lastSeq;
          void until(async () => (await streamSeq(id)) >= away + 5).then(() => {
            missedWhileAway = true;
            socket.connect();
          });
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
    expect(missedWhileAway).toBe(true);
    expect(done.state).toBe('completed');
    expect(text).toBe(done.result.text);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  });

  it('two subscribes to one room at once deliver each event once, and an unsubscribe then stops it', async () => {
    const r = await stack.request('POST', '/v1/jobs', { user, body: longChat(160) });
    const id = r.json.id as string;
    const socket: Socket = connect(stack.base, { path: '/socket.io', auth: { token: user.token }, transports: ['websocket'], reconnection: false });
    await new Promise<void>((res) => socket.on('connect', () => res()));
    const seqs: number[] = [];
    let unsubscribedAt: number | undefined;
    let afterUnsubscribe = 0;
    socket.on('tokens', (e: { seq: number }) => {
      if (unsubscribedAt !== undefined) afterUnsubscribe++;
      else seqs.push(e.seq);
    });
    const subscribe = () => new Promise<{ ok: boolean }>((res) => socket.emit('subscribe', { room: `job:${id}` }, res));
    expect(await Promise.all([subscribe(), subscribe()])).toEqual([{ ok: true }, { ok: true }]);
    await until(async () => seqs.length >= 10);
    await new Promise((res) => socket.emit('unsubscribe', { room: `job:${id}` }, res));
    unsubscribedAt = seqs.length;
    const job = await stack.waitForJob(id, user);
    socket.close();
    expect(job.state).toBe('completed');
    // The job went on streaming after the unsubscribe (its last seq is past what was received).
    expect(await streamSeq(id)).toBeGreaterThan(Math.max(...seqs) + 5);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(afterUnsubscribe).toBe(0);
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
    expect(
      all
        .filter((e) => e.event === 'tokens')
        .map((e) => e.data.text)
        .join(''),
    ).toBe(job.result.text);
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
    const r = await stack.request('POST', '/v1/jobs', { user, body: longChat(120) });
    const id = r.json.id as string;
    const url = `${stack.base}/v1/jobs/${id}/events`;
    // The first reader is on from the start; the late ones join only once the stream holds events.
    let seen = 0;
    let streamHolds!: () => void;
    const holds = new Promise<void>((res) => (streamHolds = res));
    const early = readSse(url, user.auth, {
      stopAfter: (e) => {
        if (e.event === 'tokens' && ++seen === 5) streamHolds();
        return false;
      },
    });
    await holds;
    const heldAtJoin = await streamSeq(id);
    expect(heldAtJoin).toBeGreaterThanOrEqual(5);
    const late = await Promise.all([...Array.from({ length: 6 }, () => readSse(url, user.auth)), readSse(url, { ...user.auth, 'last-event-id': '2' })]);
    const first = await early;

    const ids = first.events.map((e) => e.id);
    // Every event once, in order, ending with `finished`; its text is the recorded result.
    expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => i + 1));
    expect(ids.length).toBeGreaterThan(heldAtJoin);
    expect(first.events.at(-1)).toMatchObject({ event: 'finished', data: { state: 'completed' } });
    const job = await stack.waitForJob(id, user);
    expect(
      first.events
        .filter((e) => e.event === 'tokens')
        .map((e) => e.data.text)
        .join(''),
    ).toBe(job.result.text);
    for (const reader of late.slice(0, -1)) expect(reader.events).toEqual(first.events);
    expect(late.at(-1)!.events).toEqual(first.events.filter((e) => e.id > 2));
  });
});

describe('resuming beyond the end of a live stream', () => {
  /** Reads an SSE answer to its end: this resolves only when the server ends the response. */
  async function readToEnd(url: string, headers: Record<string, string>) {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(60_000) });
    const frames = (await res.text()).split('\n\n').filter((f) => f.includes('event: '));
    return { status: res.status, events: frames.map((f) => ({ event: /^event: (.*)$/m.exec(f)![1], data: JSON.parse(/^data: (.*)$/m.exec(f)![1]!) })) };
  }

  it("an SSE stream of a running job resumed with a Last-Event-ID past its last seq ends with the job's finished (regression: it stayed open for ever, holding a connection slot)", async () => {
    const r = await stack.request('POST', '/v1/jobs', { user, body: { kind: 'system.ping', input: { echo: 'beyond', holdMs: 1500 } } });
    const url = `${stack.base}/v1/jobs/${r.json.id}/events`;
    expect((await stack.request('HEAD', `/v1/jobs/${r.json.id}/events`, { user, headers: { 'last-event-id': '100000' } })).status).toBe(200);
    const sse = await readToEnd(url, { ...user.auth, 'last-event-id': '100000' });
    expect(sse.status).toBe(200);
    expect(sse.events.at(-1)).toMatchObject({ event: 'finished', data: { state: 'completed', result: { echo: 'beyond' } } });
    await until(async () => (await stack.api.redis.zcount(stack.api.keys.userConnections(user.id), String(Date.now()), '+inf')) === 0);
    // Resuming from that finished is then 204: nothing more, ever.
    const seq = sse.events.at(-1)!.data.seq as number;
    expect((await fetch(url, { headers: { ...user.auth, 'last-event-id': String(seq) } })).status).toBe(204);
  });

  it("a Socket.IO subscribe to a running job with a lastSeq past its last seq hears the job's finished (regression: it never heard anything)", async () => {
    const r = await stack.request('POST', '/v1/jobs', { user, body: { kind: 'system.ping', input: { echo: 'beyond', holdMs: 1500 } } });
    const socket: Socket = connect(stack.base, { path: '/socket.io', auth: { token: user.token }, transports: ['websocket'], reconnection: false });
    const finished = new Promise<any>((resolve) => socket.on('finished', resolve));
    await new Promise<void>((res) => socket.once('connect', () => res()));
    const ack = await new Promise((res) => socket.emit('subscribe', { room: `job:${r.json.id}`, lastSeq: 100_000 }, res));
    expect(ack).toEqual({ ok: true });
    expect(await finished).toMatchObject({ room: `job:${r.json.id}`, state: 'completed', result: { echo: 'beyond' } });
    socket.close();
  });
});
