/**
 * A worker SIGKILLed under load: many jobs in flight on two worker processes,
 * one killed mid-run and replaced. Every accepted job ends completed, its
 * record and its stream agree (one `finished`, from the attempt the record
 * says, last), and live SSE readers see no duplicate and no out-of-order
 * event.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readSse, startStack, type Stack, type TestUser } from '../harness.ts';
import { startWorkerProcess, type WorkerChild } from '../support/worker-process.ts';

let stack: Stack;
let user: TestUser;
const children: WorkerChild[] = [];

beforeAll(async () => {
  stack = await startStack({ workers: false });
  user = await stack.user('member');
});
afterEach(() => {
  for (const w of children.splice(0)) if (w.child.exitCode === null) w.child.kill('SIGKILL');
});
afterAll(() => stack?.stop());

async function streamOf(id: string) {
  const entries = (await stack.api.redis.xrange(stack.api.keys.jobStream(id), '-', '+')) as [string, string[]][];
  return entries.map(([eid, f]) => ({ seq: Number(eid.split('-')[1]), event: f[1]!, attempt: Number(f[3]) }));
}

describe('a worker SIGKILLed under load', () => {
  it('every job completes once; record, stream and live readers agree', { timeout: 240_000 }, async () => {
    const a = await startWorkerProcess(stack.env);
    const b = await startWorkerProcess(stack.env);
    children.push(a, b);
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const r = await stack.request('POST', '/v1/jobs', { user, body: { kind: 'system.ping', input: { echo: `load-${i}`, holdMs: 800 + (i % 5) * 200 } } });
      expect(r.status).toBe(202);
      ids.push(r.json.id);
    }
    const readers = ids.slice(0, 12).map((id) => readSse(`${stack.base}/v1/jobs/${id}/events`, user.auth, { timeoutMs: 200_000 }));
    // Kill one worker while both hold jobs.
    const deadline = Date.now() + 60_000;
    while (
      !(await stack.api
        .db('jobs')
        .whereIn('id', ids)
        .andWhere({ state: 'active' })
        .count({ n: '*' })
        .first()
        .then((r) => Number(r?.n) >= 4))
    ) {
      if (Date.now() > deadline) throw new Error('jobs never became active');
      await new Promise((r) => setTimeout(r, 50));
    }
    a.child.kill('SIGKILL');
    children.push(await startWorkerProcess(stack.env));
    for (const id of ids) {
      const job = await stack.waitForJob(id, user, 180_000);
      expect(job.state, id).toBe('completed');
      expect(job.result.attempt).toBe(job.attempts);
      const entries = await streamOf(id);
      const finished = entries.filter((e) => e.event === 'finished');
      const state = await stack.api.redis.hgetall(`${stack.api.keys.jobStream(id)}:w`);
      const ttl = await stack.api.redis.ttl(stack.api.keys.jobStream(id));
      expect(
        finished,
        `${id} ${JSON.stringify(entries)} state ${JSON.stringify(state)} ttl ${ttl} record ${JSON.stringify({ attempts: job.attempts, result: job.result })}`,
      ).toHaveLength(1);
      expect(finished[0]!.attempt).toBe(job.attempts);
      expect(entries.at(-1)!.event).toBe('finished');
    }
    const retried = (await Promise.all(ids.map((id) => stack.waitForJob(id, user)))).filter((j) => j.attempts > 1);
    expect(retried.length).toBeGreaterThan(0);
    for (const { events } of await Promise.all(readers)) {
      const seqs = events.map((e) => e.id);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
      expect(new Set(seqs).size).toBe(seqs.length);
      expect(events.filter((e) => e.event === 'finished')).toHaveLength(1);
      expect(events.at(-1)!.event).toBe('finished');
    }
  });
});
