import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSse, startStack, type Stack, type TestUser } from '../harness.ts';
import { until } from '../support/until.ts';

let stack: Stack;
let idle: Stack;
let user: TestUser;

beforeAll(async () => {
  stack = await startStack();
  idle = await startStack({ workers: false });
  user = await stack.user('member');
});
afterAll(async () => {
  await stack?.stop();
  await idle?.stop();
});

async function streamLength(s: Stack, id: string): Promise<number> {
  return s.api.redis.xlen(s.api.keys.jobStream(id));
}

describe('cancel', () => {
  it('removes a waiting job from its queue and records it cancelled', async () => {
    const u = await idle.user('member');
    const r = await idle.request('POST', '/v1/jobs', { user: u, body: { kind: 'system.ping', input: {} } });
    expect(await idle.api.jobs.queues.system.getJob(r.json.id)).toBeTruthy();
    const c = await idle.request('DELETE', `/v1/jobs/${r.json.id}`, { user: u });
    expect(c.status).toBe(200);
    expect(c.json.state).toBe('cancelled');
    expect(c.json.error.code).toBe('CANCELLED');
    expect(await idle.api.jobs.queues.system.getJob(r.json.id)).toBeUndefined();
    const sse = await readSse(`${idle.base}/v1/jobs/${r.json.id}/events`, u.auth, { timeoutMs: 5000 });
    expect(sse.events.at(-1)).toMatchObject({ event: 'finished', data: { state: 'cancelled' } });
  });

  it("a job retried after a cancel streams its new run to a new listener, ending with the new run's finished (regression: the old run's finished ended every stream)", async () => {
    const r = await stack.request('POST', '/v1/jobs', { user, body: { kind: 'system.ping', input: { echo: 'again', holdMs: 1500 } } });
    const c = await stack.request('DELETE', `/v1/jobs/${r.json.id}`, { user });
    expect(c.json.state).toBe('cancelled');
    const retried = await stack.request('POST', `/v1/jobs/${r.json.id}/retry`, { user });
    expect(retried.status).toBe(202);
    const sse = await readSse(`${stack.base}/v1/jobs/${r.json.id}/events`, user.auth, { timeoutMs: 30_000 });
    const finished = sse.events.filter((e) => e.event === 'finished');
    expect(finished).toHaveLength(1);
    expect(finished[0]!.data.state).toBe('completed');
    expect(finished[0]!.data.result.echo).toBe('again');
    // And a reader already past the first run's end picks up the second run where it left off.
    const first = (await stack.api.redis.xrange(stack.api.keys.jobStream(r.json.id), '-', '+')).findIndex(([, f]) => f[1] === 'finished');
    const resumed = await readSse(`${stack.base}/v1/jobs/${r.json.id}/events`, { ...user.auth, 'last-event-id': String(first + 1) }, { timeoutMs: 30_000 });
    expect(resumed.events.at(-1)).toMatchObject({ event: 'finished', data: { state: 'completed' } });
  });

  it('answers 409 when cancelling a finished job', async () => {
    const r = await stack.request('POST', '/v1/jobs', { user, body: { kind: 'system.ping', input: {} } });
    await stack.waitForJob(r.json.id, user);
    const c = await stack.request('DELETE', `/v1/jobs/${r.json.id}`, { user });
    expect(c.status).toBe(409);
  });

  it('aborts an active chat on whichever worker holds it; tokens stop and partial output and usage are recorded', async () => {
    const r = await stack.request('POST', '/v1/jobs', {
      user,
      body: {
        kind: 'llm.chat',
        input: {
          messages: [{ role: 'user', content: 'Write a very long story about a lighthouse keeper and the sea, with many chapters.' }],
          options: { num_predict: 1500, temperature: 0.7 },
        },
      },
    });
    const id = r.json.id;
    // Wait until some tokens have streamed.
    const early = await readSse(`${stack.base}/v1/jobs/${id}/events`, user.auth, { stopAfter: (e) => e.event === 'tokens' && e.data.seq >= 8 });
    expect(early.events.filter((e) => e.event === 'tokens').length).toBeGreaterThanOrEqual(8);
    const c = await stack.request('DELETE', `/v1/jobs/${id}`, { user });
    expect(c.status).toBe(200);
    expect(c.json.state).toBe('cancelled');
    // Once the attempt has ended on the worker, nothing of it can write any more: the stream stops at its `finished`.
    await until('the cancelled attempt to end on the worker', () => stack.workers!.host.activeJobs === 0);
    const lengthAtEnd = await streamLength(stack, id);
    const [last] = (await stack.api.redis.xrevrange(stack.api.keys.jobStream(id), '+', '-', 'COUNT', 1)) as [string, string[]][];
    const fields = last![1];
    expect(fields[fields.indexOf('e') + 1]).toBe('finished');

    const job = (await stack.request('GET', `/v1/jobs/${id}`, { user })).json;
    expect(job.result.partial).toBe(true);
    expect(job.result.text.length).toBeGreaterThan(0);
    expect(job.usage.estimated).toBe(true);
    expect(job.usage.completionTokens).toBeGreaterThanOrEqual(8);
    expect(job.usage.completionTokens).toBeLessThan(1500);
    expect(job.usage.promptTokens).toBeGreaterThan(0);
    // The stream holds exactly the partial text, then one finished event.
    const all = await readSse(`${stack.base}/v1/jobs/${id}/events`, user.auth, { timeoutMs: 5000 });
    const text = all.events
      .filter((e) => e.event === 'tokens')
      .map((e) => e.data.text)
      .join('');
    expect(text).toBe(job.result.text);
    expect(all.events.filter((e) => e.event === 'finished')).toHaveLength(1);
    expect(all.events).toHaveLength(lengthAtEnd);
  });
});
