import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobOptions } from '../../platform/jobs/index.ts';
import { llmChat, systemPing } from '../../shared/index.ts';
import { startStack, type Stack, type TestUser } from '../harness.ts';

let stack: Stack;
let user: TestUser;

beforeAll(async () => {
  stack = await startStack();
  user = await stack.user('member');
});
afterAll(() => stack?.stop());

/** Puts a job straight into the queue, as an old or foreign producer could, bypassing the API's validation. */
async function inject(def: typeof llmChat | typeof systemPing, data: unknown): Promise<string> {
  const id = randomUUID();
  await stack.api.jobs.store.insert({
    id,
    kind: def.kind,
    v: def.v,
    queue: def.queue,
    ownerId: user.id,
    priority: 'normal',
    maxAttempts: def.defaults.attempts,
    input: {},
  });
  await stack.api.jobs.queues[def.queue].add(def.kind, data, jobOptions(def, id, 'normal'));
  return id;
}

describe('workers validate payloads again at pick-up', () => {
  it('fails an invalid input as INVALID_PAYLOAD on the first attempt, with field paths', async () => {
    const id = await inject(llmChat, { kind: 'llm.chat', v: 1, input: { messages: 'not-a-list' }, ownerId: user.id, priority: 'normal' });
    const job = await stack.waitForJob(id, user);
    expect(job.state).toBe('failed');
    expect(job.error.code).toBe('INVALID_PAYLOAD');
    expect(job.error.details[0].path).toBe('messages');
    expect(job.attempts).toBe(0);
  });

  it('fails a payload of an unknown version as INVALID_PAYLOAD', async () => {
    const id = await inject(systemPing, { kind: 'system.ping', v: 99, input: {}, ownerId: user.id, priority: 'normal' });
    const job = await stack.waitForJob(id, user);
    expect(job.error.code).toBe('INVALID_PAYLOAD');
    expect(job.error.message).toContain('version 99');
  });

  it('fails a malformed envelope without crashing the worker, which keeps serving', async () => {
    const id = await inject(systemPing, 'garbage');
    expect((await stack.waitForJob(id, user)).error.code).toBe('INVALID_PAYLOAD');
    const ok = await stack.request('POST', '/v1/jobs', { user, body: { kind: 'system.ping', input: { echo: 'still alive' } } });
    expect((await stack.waitForJob(ok.json.id, user)).result.echo).toBe('still alive');
  });
});
