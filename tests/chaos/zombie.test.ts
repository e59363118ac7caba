/**
 * A zombie attempt: a worker stopped (SIGSTOP) past its lock while another
 * worker takes the job over, then resumed (SIGCONT). The regression this pins
 * (issue: reliability under faults): the zombie's result won the record, its
 * events landed after the winner's `finished`, its retry set the record back
 * to queued, and its tokens were added to usage.
 *
 * The invariants, checked on the record, the raw stream and a live SSE client:
 * one terminal record; exactly one `finished`, from the attempt the record
 * says finished, and nothing after it; no event of the superseded attempt
 * after the winner claimed the stream; usage equal to what Ollama counted for
 * the winning attempt; a resume after `finished` answers 204.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readSse, startStack, type Stack, type TestUser } from '../harness.ts';
import { startWorkerProcess, type WorkerChild } from '../support/worker-process.ts';
import { until } from '../support/until.ts';

let stack: Stack;
let user: TestUser;
const children: WorkerChild[] = [];

beforeAll(async () => {
  stack = await startStack({ workers: false });
  user = await stack.user('member');
});
afterEach(async () => {
  for (const w of children.splice(0)) {
    if (w.child.exitCode === null) {
      w.child.kill('SIGCONT');
      w.child.kill('SIGKILL');
    }
  }
});
afterAll(() => stack?.stop());

async function worker(extra: Record<string, string> = {}): Promise<WorkerChild> {
  const w = await startWorkerProcess(stack.env, extra);
  children.push(w);
  return w;
}

const job = async (id: string) => (await stack.request('GET', `/v1/jobs/${id}`, { user })).json;

/** The raw stream, entry by entry: seq, event, attempt. */
async function rawStream(id: string): Promise<{ seq: number; event: string; attempt: number; data: any }[]> {
  const entries = (await stack.api.redis.xrange(stack.api.keys.jobStream(id), '-', '+')) as [string, string[]][];
  return entries.map(([eid, f]) => {
    const m: Record<string, string> = {};
    for (let i = 0; i < f.length; i += 2) m[f[i]!] = f[i + 1]!;
    return { seq: Number(eid.split('-')[1]), event: m.e!, attempt: Number(m.a), data: JSON.parse(m.d ?? '{}') };
  });
}

function expectOneFinishedFromTheWinner(entries: { seq: number; event: string; attempt: number }[], winner: number) {
  const finished = entries.filter((e) => e.event === 'finished');
  expect(finished).toHaveLength(1);
  expect(finished[0]!.attempt).toBe(winner);
  expect(entries.at(-1)!.event).toBe('finished');
  // Once the winner wrote, nothing of an older attempt follows.
  const firstOfWinner = entries.findIndex((e) => e.attempt === winner);
  expect(entries.slice(firstOfWinner).every((e) => e.attempt === winner)).toBe(true);
}

describe('a zombie attempt (SIGSTOP past its lock, SIGCONT after the takeover)', () => {
  it('on system.ping: the newer attempt owns the record and the stream; the zombie writes nothing more', async () => {
    const a = await worker();
    const r = await stack.request('POST', '/v1/jobs', { user, body: { kind: 'system.ping', input: { echo: 'fenced', holdMs: 6000 } } });
    const id: string = r.json.id;
    const live = readSse(`${stack.base}/v1/jobs/${id}/events`, user.auth, { timeoutMs: 90_000 });
    await until('attempt 1 active with progress', async () => (await rawStream(id)).some((e) => e.event === 'progress' && e.attempt === 1));
    a.child.kill('SIGSTOP');
    const b = await worker();
    await until('attempt 2 active', async () => {
      const j = await job(id);
      return j.state === 'active' && j.attempts === 2;
    });
    a.child.kill('SIGCONT');
    const done = await until(
      'a terminal record',
      async () => {
        const j = await job(id);
        return ['completed', 'failed', 'cancelled'].includes(j.state) && j;
      },
      { timeoutMs: 90_000 },
    );
    expect(done.state).toBe('completed');
    expect(done.attempts).toBe(2);
    expect(done.result.attempt).toBe(2);
    expect(done.result.worker).toMatch(new RegExp(`:${b.child.pid}$`));
    // The zombie notices (lost lock or refused write) and stops; give it the time a lock renewal takes.
    await until('the zombie to stand down', async () => /attempt superseded/.test(a.output()), { timeoutMs: 15_000 });
    // The record is written before the stream's `finished` (platform/jobs lifecycle): wait for that event, not a time.
    const entries = await until('the finished event in the stream', async () => {
      const e = await rawStream(id);
      return e.some((x) => x.event === 'finished') && e;
    });
    expectOneFinishedFromTheWinner(entries, 2);
    const { events } = await live;
    expect(events.filter((e) => e.event === 'finished')).toHaveLength(1);
    expect(events.at(-1)!.data.attempt).toBe(2);
    const seqs = events.map((e) => e.id);
    expect(new Set(seqs).size).toBe(seqs.length);
    // Still one finished once the zombie had every chance to write.
    expect((await rawStream(id)).filter((e) => e.event === 'finished')).toHaveLength(1);
    const finishedSeq = entries.at(-1)!.seq;
    const resumed = await fetch(`${stack.base}/v1/jobs/${id}/events`, { headers: { ...user.auth, 'last-event-id': String(finishedSeq) } });
    expect(resumed.status).toBe(204);
    const before = await readSse(`${stack.base}/v1/jobs/${id}/events`, { ...user.auth, 'last-event-id': String(finishedSeq - 1) }, { timeoutMs: 10_000 });
    expect(before.events.map((e) => e.event)).toEqual(['finished']);
  });

  it(
    "on llm.chat: the winner's text is the record's, usage is what Ollama counted for it, and the zombie's generation stops",
    { timeout: 420_000 },
    async () => {
      const a = await worker();
      const body = {
        kind: 'llm.chat',
        input: {
          messages: [{ role: 'user', content: 'Write a long story about a lighthouse keeper and the sea.' }],
          options: { num_predict: 200, temperature: 0.8 },
          cache: 'bypass',
        },
      };
      const r = await stack.request('POST', '/v1/jobs', { user, body });
      const id: string = r.json.id;
      const live = readSse(`${stack.base}/v1/jobs/${id}/events`, user.auth, { timeoutMs: 400_000 });
      await until('attempt 1 streaming', async () => (await rawStream(id)).some((e) => e.event === 'tokens' && e.attempt === 1));
      a.child.kill('SIGSTOP');
      const b = await worker();
      await until('attempt 2 streaming', async () => (await rawStream(id)).some((e) => e.event === 'tokens' && e.attempt === 2), { timeoutMs: 60_000 }).catch(
        async (err: Error) => {
          throw new Error(
            `${err.message}\nrecord: ${JSON.stringify(await job(id))}\nstream: ${JSON.stringify((await rawStream(id)).map((e) => [e.seq, e.event, e.attempt]))}\nworker b:\n${b.output().slice(-3000)}`,
          );
        },
      );
      a.child.kill('SIGCONT');
      const done = await until(
        'a terminal record',
        async () => {
          const j = await job(id);
          return ['completed', 'failed', 'cancelled'].includes(j.state) && j;
        },
        { timeoutMs: 240_000 },
      ).catch(async (err: Error) => {
        throw new Error(
          `${err.message}\nrecord: ${JSON.stringify(await job(id))}\nstream: ${JSON.stringify((await rawStream(id)).map((e) => [e.seq, e.event, e.attempt]))}\nworker a:\n${a.output().slice(-3000)}\nworker b:\n${b.output().slice(-3000)}`,
        );
      });
      expect(done.state).toBe('completed');
      expect(done.attempts).toBe(2);
      await until('the zombie to stand down', async () => /attempt superseded/.test(a.output()), { timeoutMs: 15_000 });
      // The record is written before the stream's `finished` (platform/jobs lifecycle): wait for that event, not a time.
      const entries = await until('the finished event in the stream', async () => {
        const e = await rawStream(id);
        return e.some((x) => x.event === 'finished') && e;
      });
      expectOneFinishedFromTheWinner(entries, 2);
      // The text of attempt 2's events (after its reset) is the recorded result.
      const sinceReset = entries.slice(entries.findIndex((e) => e.event === 'reset' && e.attempt === 2));
      const streamed = sinceReset
        .filter((e) => e.event === 'tokens')
        .map((e) => e.data.text)
        .join('');
      expect(
        streamed,
        `entries ${entries.length}: ${JSON.stringify(entries.map((e) => [e.seq, e.event, e.attempt, e.event === 'tokens' ? e.data.text.length : 0]))}`,
      ).toBe(done.result.text);
      // Usage: exactly what Ollama counted for the winning attempt (the stalled one billed nothing).
      expect(done.usage).toMatchObject({ promptTokens: done.result.usage.promptTokens, completionTokens: done.result.usage.completionTokens });
      const day = (await stack.request('GET', '/v1/usage', { user })).json;
      expect(day.totals.completionTokens).toBe(done.result.usage.completionTokens);
      expect(day.totals.promptTokens).toBe(done.result.usage.promptTokens);
      const { events } = await live;
      const liveText = events
        .slice(events.findLastIndex((e) => e.event === 'reset') + 1)
        .filter((e) => e.event === 'tokens')
        .map((e) => e.data.text)
        .join('');
      expect(liveText).toBe(done.result.text);
      expect(events.filter((e) => e.event === 'finished')).toHaveLength(1);
    },
  );
});
