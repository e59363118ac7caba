/**
 * A worker that dies after the terminal record but before the stream's
 * `finished` (regression, found by the SIGKILL-under-load chaos test: the job
 * was redelivered, found terminal, skipped, and its listeners never ended).
 * The duplicate delivery now writes the missing event from the record.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPing } from '../../shared/index.ts';
import { startWorkers } from '../../workers/main.ts';
import { readSse, startStack, type Stack, type TestUser } from '../harness.ts';

let stack: Stack;
let user: TestUser;

beforeAll(async () => {
  stack = await startStack({ workers: false });
  user = await stack.user('member');
});
afterAll(() => stack?.stop());

describe('a record written terminal whose stream never got finished', () => {
  it('gets its finished event from the record when the job is delivered again', async () => {
    const { row } = await stack.api.jobs.accept({ def: systemPing, input: { echo: 'orphaned' }, ownerId: user.id, priority: 'normal' });
    // What a worker that died between the two writes leaves: the record completed, the stream without `finished`.
    expect(await stack.api.jobs.start(row.id)).toMatchObject({ attempt: 1 });
    const writer = stack.api.jobs.stream(row.id, systemPing.kind, 1);
    await stack.api.jobs.claim(writer, row.id);
    writer.progress({ heldMs: 0 });
    await writer.flush();
    expect(
      await stack.api.jobs.store.finish(
        row.id,
        { state: 'completed', result: { echo: 'orphaned', worker: 'gone', attempt: 1, at: new Date().toISOString() } },
        { attempt: 1 },
      ),
    ).not.toBe(false);
    const before = await readSse(`${stack.base}/v1/jobs/${row.id}/events`, user.auth, { timeoutMs: 1500 });
    expect(before.events.filter((e) => e.event === 'finished')).toEqual([]);
    // Its queue entry is still there: a worker picks it up, finds it terminal, and repairs the stream.
    const workers = await startWorkers({ ...stack.env }, { queues: ['system'] });
    try {
      const after = await readSse(`${stack.base}/v1/jobs/${row.id}/events`, user.auth, { timeoutMs: 30_000 });
      expect(after.events.at(-1)).toMatchObject({ event: 'finished', data: { state: 'completed', attempt: 1, result: { echo: 'orphaned' } } });
      expect(after.events.filter((e) => e.event === 'finished')).toHaveLength(1);
    } finally {
      await workers.stop();
    }
  });
});
