/**
 * Reconciliation, the sweeper's guarantee that every accepted job ends in a
 * recorded terminal state (platform/jobs `reconcile`), on the paths where the
 * queue and the record disagree and no worker will ever write the outcome:
 * a job gone from its queue while recorded active, a job BullMQ failed (a
 * worker that stalled too often, or one that is not ours) and a job BullMQ
 * completed without a record. Each ends failed, with `finished` on its
 * stream, once.
 *
 * No workers of ours run here; the BullMQ worker below stands in for one that
 * finished or failed a job in the queue without writing the record.
 */
import { Worker, UnrecoverableError } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSse, startStack, type Stack, type TestUser } from '../harness.ts';

let stack: Stack;
let user: TestUser;

beforeAll(async () => {
  stack = await startStack({ workers: false });
  user = await stack.user('member');
});
afterAll(() => stack?.stop());

async function submitPing(echo: string): Promise<string> {
  const r = await stack.request('POST', '/v1/jobs', { user, body: { kind: 'system.ping', input: { echo } } });
  expect(r.status).toBe(202);
  return r.json.id as string;
}

const row = (id: string) => stack.api.db('jobs').where({ id }).first();

/** Runs one BullMQ job of the `system` queue with `processor`, as a worker that writes no record would. */
async function runInQueueOnly(id: string, processor: () => Promise<unknown>): Promise<void> {
  const queue = stack.api.jobs.queues.system;
  const connection = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
  const worker = new Worker(queue.name, processor, { connection, prefix: queue.opts.prefix, autorun: false });
  const settled = new Promise<void>((resolve) => {
    const done = (job: { id?: string } | undefined) => void (job?.id === id && resolve());
    worker.on('completed', done);
    worker.on('failed', done);
  });
  void worker.run();
  try {
    await settled;
  } finally {
    await worker.close();
    await connection.quit();
  }
}

/** The job's SSE stream, read from the start: it must end with one `finished`. */
async function finishedEvents(id: string) {
  const { events } = await readSse(`${stack.base}/v1/jobs/${id}/events`, user.auth, { timeoutMs: 10_000 });
  return events.filter((e) => e.event === 'finished');
}

describe('reconciliation records a terminal state the queue will never produce', () => {
  it('fails a job recorded active whose queue job vanished, as STALLED', async () => {
    const id = await submitPing('vanished');
    // A worker started it (attempt 1) and then the queue lost it.
    expect(await stack.api.jobs.start(id)).toMatchObject({ attempt: 1 });
    await (await stack.api.jobs.queues.system.getJob(id))!.remove();

    const out = await stack.api.jobs.reconcile(0);
    expect(out).toEqual({ handedOff: 0, failed: 1 });
    expect(await row(id)).toMatchObject({ state: 'failed', error_code: 'STALLED', error_message: 'job vanished from its queue while active', attempts: 1 });
    expect(await finishedEvents(id)).toEqual([
      expect.objectContaining({
        data: expect.objectContaining({ state: 'failed', error: { code: 'STALLED', message: 'job vanished from its queue while active' } }),
      }),
    ]);
    // Terminal now: a second pass finds nothing to do.
    expect(await stack.api.jobs.reconcile(0)).toEqual({ handedOff: 0, failed: 0 });
  });

  it('fails a job BullMQ failed without a recorded outcome, as STALLED with the queue’s reason', async () => {
    const id = await submitPing('failed-in-queue');
    await runInQueueOnly(id, async () => {
      throw new UnrecoverableError('job stalled more than allowable limit');
    });
    expect(await row(id)).toMatchObject({ state: 'queued' });

    expect(await stack.api.jobs.reconcile(0)).toEqual({ handedOff: 0, failed: 1 });
    expect(await row(id)).toMatchObject({ state: 'failed', error_code: 'STALLED', error_message: 'job stalled more than allowable limit' });
    const job = (await stack.request('GET', `/v1/jobs/${id}`, { user })).json;
    expect(job).toMatchObject({ state: 'failed', error: { code: 'STALLED' } });
    expect(await finishedEvents(id)).toHaveLength(1);
  });

  it('fails a job BullMQ completed without a recorded outcome, as INTERNAL: no result was kept', async () => {
    const id = await submitPing('completed-in-queue');
    await runInQueueOnly(id, async () => ({ echo: 'never recorded' }));
    expect(await row(id)).toMatchObject({ state: 'queued', result: null });

    expect(await stack.api.jobs.reconcile(0)).toEqual({ handedOff: 0, failed: 1 });
    expect(await row(id)).toMatchObject({
      state: 'failed',
      error_code: 'INTERNAL',
      error_message: 'queue reports completion without a recorded outcome',
      result: null,
    });
    expect(await finishedEvents(id)).toHaveLength(1);
  });

  it('leaves alone a queued job that is waiting in its queue', async () => {
    const id = await submitPing('waiting');
    expect(await stack.api.jobs.reconcile(0)).toEqual({ handedOff: 0, failed: 0 });
    expect(await row(id)).toMatchObject({ state: 'queued' });
    expect(await stack.api.jobs.queues.system.getJob(id)).toBeTruthy();
  });
});
