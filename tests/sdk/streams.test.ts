/**
 * Streaming with the SDK against the real API, workers and Ollama:
 * `jobs.run` with onToken, resuming after a forced disconnect over SSE (a
 * proxy cuts the stream) and over Socket.IO (the server drops the socket)
 * with no gap and no duplicate and the text equal to the stored result,
 * aborting a stream (it closes, the server lets go of it), `cancelJob`
 * (the job is cancelled and the model stops), and a room's stream.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createClient, isCancelled, ParleyError, type JobEvent, type ParleyClient } from '../../sdk/index.ts';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';

// Real model output on a shared 2-core machine: generous per-test bounds; the token counts stay small.
vi.setConfig({ testTimeout: 300_000 });

let stack: Stack;
let proxy: FaultProxy;
let user: TestUser;
let client: ParleyClient;
const chat = (content: string, num_predict: number) => ({
  messages: [{ role: 'user' as const, content }],
  options: { num_predict, temperature: 0 },
  cache: 'bypass' as const,
});

beforeAll(async () => {
  stack = await startStack();
  proxy = await startFaultProxy(stack.base);
  user = await stack.user('member');
  client = createClient({ baseUrl: stack.base, auth: user.token });
});
afterAll(async () => {
  client?.close();
  await proxy?.close();
  await stack?.stop();
});

/** Seqs 1..n in order, each once. */
const expectContiguous = (events: JobEvent[]) => expect(events.map((e) => e.data.seq)).toEqual(events.map((_, i) => i + 1));
const textOf = (events: JobEvent[]) => events.reduce((t, e) => (e.event === 'tokens' ? t + e.data.text : e.event === 'reset' ? '' : t), '');

describe('jobs.run', () => {
  it('submits, streams tokens to onToken and resolves with the typed result', async () => {
    let text = '';
    const result = await client.jobs.run('llm.chat', chat('Name three colours.', 16), { onToken: (t) => (text += t) });
    expect(result.text.length).toBeGreaterThan(0);
    expect(text).toBe(result.text);
    expect(result.usage.completionTokens).toBeGreaterThan(0);
  });

  it('rejects with CANCELLED when the job is cancelled meanwhile', async () => {
    const err = await client.jobs
      .run('system.ping', { holdMs: 10_000 }, { onProgress: () => {}, onSubmitted: (job) => void setTimeout(() => void client.jobs.cancel(job.id), 500) })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(isCancelled(err)).toBe(true);
    expect((err as ParleyError).job?.state).toBe('cancelled');
  });
});

describe('resuming after a forced disconnect', () => {
  it('over SSE: the proxy cuts the stream; no gap, no duplicate, the text equals the stored result', async () => {
    const c = createClient({ baseUrl: proxy.url, auth: user.token });
    const job = await c.jobs.submit('llm.chat', chat('Count from one to twenty in words.', 24));
    // The first two connections die after a few hundred bytes of events.
    proxy.inject((m, p) => m === 'GET' && p === `/v1/jobs/${job.id}/events`, { kind: 'cut-after', bytes: 250 }, 2);
    const stream = c.jobs.stream(job.id);
    const events: JobEvent[] = [];
    for await (const e of stream) events.push(e);
    expect(stream.reconnects).toBeGreaterThanOrEqual(2);
    const resumed = proxy.log.filter((l) => l.path === `/v1/jobs/${job.id}/events`).map((l) => l.headers['last-event-id']);
    expect(resumed[0]).toBeUndefined();
    expect(resumed.slice(1).every((id) => Number(id) > 0)).toBe(true);
    expectContiguous(events);
    expect(events.at(-1)!.event).toBe('finished');
    const stored = await client.jobs.get(job.id);
    expect(stored.state).toBe('completed');
    expect(textOf(events)).toBe((stored.result as { text: string }).text);
  });

  it('over Socket.IO: the server drops every socket mid-stream; no gap, no duplicate, the text equals the stored result', async () => {
    const c = createClient({ baseUrl: stack.base, auth: user.token, transport: 'socket.io' });
    // A long answer, so that the drop lands while the model is still speaking: with a short one the client could hold
    // `finished` in its buffer before it read the first tokens, and there was nothing left to reconnect for.
    const job = await c.jobs.submit('llm.chat', chat('Write a long essay about rivers.', 160));
    const stream = c.jobs.stream(job.id);
    const events: JobEvent[] = [];
    let dropped = false;
    for await (const e of stream) {
      events.push(e);
      if (!dropped && e.event === 'tokens') {
        dropped = true;
        stack.api.io.disconnectSockets(true);
      }
    }
    c.close();
    expect(dropped).toBe(true);
    expect(stream.reconnects).toBeGreaterThanOrEqual(1);
    expectContiguous(events);
    const stored = await client.jobs.get(job.id);
    expect(textOf(events)).toBe((stored.result as { text: string }).text);
  });
});

describe('cancellation', () => {
  it('aborting a stream closes it: the loop ends, the server lets go, the job runs on', async () => {
    const job = await client.jobs.submit('system.ping', { holdMs: 3000 });
    const controller = new AbortController();
    const key = stack.api.keys.jobStream(job.id);
    let progress = 0;
    for await (const e of client.jobs.stream(job.id, { signal: controller.signal })) {
      if (e.event === 'progress' && ++progress === 2) {
        expect(stack.api.hub.subscriberCount(key)).toBe(1);
        controller.abort();
      }
    }
    expect(progress).toBe(2);
    await expect.poll(() => stack.api.hub.subscriberCount(key)).toBe(0);
    expect((await stack.waitForJob(job.id, user)).state).toBe('completed');
  });

  it('with cancelJob, closing the stream cancels the job and the model stops', async () => {
    const job = await client.jobs.submit('llm.chat', chat('Write a long essay about rivers.', 400));
    const stream = client.jobs.stream(job.id, { cancelJob: true });
    let tokens = 0;
    for await (const e of stream) {
      if (e.event === 'tokens' && ++tokens === 3) break;
    }
    const final = await stack.waitForJob(job.id, user);
    expect(final.state).toBe('cancelled');
    expect(final.error.code).toBe('CANCELLED');
    expect(final.usage.completionTokens).toBeLessThan(400);
  });
});

describe('discussions.stream', () => {
  it("replays a room from its first event and ends when it closes; the turns' tokens equal the transcript", async () => {
    const agents = [];
    for (const name of ['Ivy', 'Jon'])
      agents.push(await client.agents.create({ name, persona: `${name}, brief.`, params: { num_predict: 16, temperature: 0 } }));
    const room = await client.discussions.create({ topic: 'Tea or coffee?', agentIds: agents.map((a) => a.id), policy: { maxTurns: 2 } });
    await client.discussions.start(room.id);
    const texts = new Map<number, string>();
    const names: string[] = [];
    let last = '';
    for await (const e of client.discussions.stream(room.id)) {
      last = e.event;
      if (e.event === 'turn_started') (texts.set(e.data.turn, ''), names.push(e.data.agentName));
      if (e.event === 'tokens') texts.set(e.data.turn, texts.get(e.data.turn)! + e.data.text);
    }
    expect(last).toBe('status');
    expect(names).toEqual(['Ivy', 'Jon']);
    const transcript = await client.discussions.transcript(room.id);
    expect(transcript.status).toBe('finished');
    expect(transcript.turns.map((t) => [t.turn, t.text])).toEqual([...texts.entries()]);
  });
});

describe('resuming at or past the end', () => {
  const transports = ['sse', 'socket.io'] as const;

  it.each(transports)(
    "over %s: a finished job's stream resumed from its last seq ends at once, with nothing (regression: SSE took the 204 for a failure and gave up after ten reconnects; Socket.IO ignored the ack's ended and never ended)",
    async (transport) => {
      const job = await client.jobs.submit('system.ping', { echo: 'end' });
      const first = client.jobs.stream(job.id, { transport });
      const seen: JobEvent[] = [];
      for await (const e of first) seen.push(e);
      expect(seen.at(-1)).toMatchObject({ event: 'finished', data: { state: 'completed' } });
      for (const afterSeq of [first.lastSeq, first.lastSeq + 50]) {
        const resumed = client.jobs.stream(job.id, { transport, afterSeq });
        const got: JobEvent[] = [];
        for await (const e of resumed) got.push(e);
        expect(got, `afterSeq ${afterSeq}`).toEqual([]);
        expect(resumed.reconnects, `afterSeq ${afterSeq}`).toBe(0);
        expect(resumed.lastSeq).toBe(afterSeq);
      }
    },
    60_000,
  );

  it.each(transports)(
    'over %s: a running job resumed with an afterSeq past its last seq ends when the job finishes (regression: it never ended)',
    async (transport) => {
      const job = await client.jobs.submit('system.ping', { echo: 'end', holdMs: 1500 });
      const got: JobEvent[] = [];
      for await (const e of client.jobs.stream(job.id, { transport, afterSeq: 100_000 })) got.push(e);
      expect(got).toEqual([]);
      expect((await client.jobs.get(job.id)).state).toBe('completed');
    },
    60_000,
  );

  it.each(transports)(
    "over %s: a closed room's stream resumed from its closing status ends at once (regression: as a job's, it failed or never ended)",
    async (transport) => {
      const agents = [];
      for (const name of ['Kim', 'Lou'])
        agents.push(await client.agents.create({ name: `${name}-${transport}`, persona: `${name}, brief.`, params: { num_predict: 8 } }));
      const room = await client.discussions.create({ topic: 'Rain or shine?', agentIds: agents.map((a) => a.id) });
      await client.discussions.stop(room.id);
      const first = client.discussions.stream(room.id, { transport });
      let last = '';
      for await (const e of first) last = e.event;
      expect(['status', 'snapshot']).toContain(last);
      const resumed = client.discussions.stream(room.id, { transport, afterSeq: first.lastSeq });
      let more = 0;
      for await (const _ of resumed) more++;
      expect(more).toBe(0);
      expect(resumed.reconnects).toBe(0);
    },
    60_000,
  );
});
