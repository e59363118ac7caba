/**
 * A turn job that finds its room moved on does nothing. Turn jobs are
 * delivered at least once, and a room can be rescheduled or stopped while
 * one waits: only the job the room row names, for the turn it expects, may
 * claim the turn. Any other delivery completes as `skipped`, with the reason,
 * and leaves the room, its transcript and its live stream as they were.
 *
 * The jobs wait on a stack without workers while the room is changed under
 * them; then a worker runs them. No turn reaches Ollama.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startWorkers } from '../../workers/main.ts';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { act, makeAgents, makeRoom, transcript } from './rooms.ts';

let stack: Stack;
let user: TestUser;
let workers: Awaited<ReturnType<typeof startWorkers>> | undefined;

beforeAll(async () => {
  stack = await startStack({ workers: false });
  user = await stack.user('member');
});
afterEach(async () => {
  await workers?.stop();
  workers = undefined;
});
afterAll(() => stack?.stop());

const roomRow = (id: string) => stack.api.db('discussions').where({ id }).first();
const roomStreamLength = (id: string) => stack.api.redis.xlen(stack.api.keys.roomStream(id));

/** A started room whose first turn job waits in the queue. */
async function waitingRoom(): Promise<{ id: string; turnJobId: string }> {
  const agents = await makeAgents(stack, user, 2);
  const d = await makeRoom(stack, user, { agentIds: agents.map((a) => a.id) });
  await act(stack, user, d.id, 'start');
  const row = await roomRow(d.id);
  expect(row).toMatchObject({ status: 'running', current_turn: 0, speaking: false });
  return { id: d.id, turnJobId: row.turn_job_id };
}

describe('stale turn jobs', () => {
  it('skips a turn job that a newer one superseded, and leaves the room to the newer one', async () => {
    const { id, turnJobId } = await waitingRoom();
    // As if the room had been rescheduled meanwhile: its current turn job is another one.
    const newer = randomUUID();
    await stack.api.db('discussions').where({ id }).update({ turn_job_id: newer });
    const before = { row: await roomRow(id), events: await roomStreamLength(id) };

    workers = await startWorkers(stack.env, { queues: ['llm'] });
    const job = await stack.waitForJob(turnJobId, user);
    expect(job).toMatchObject({
      state: 'completed',
      result: { discussionId: id, turn: 1, outcome: 'skipped', agentId: null, reason: 'a newer turn job superseded this one', usage: null },
    });

    expect(await roomRow(id)).toMatchObject({
      status: 'running',
      current_turn: 0,
      speaking: false,
      speaker_id: null,
      turn_job_id: newer,
      updated_at: before.row.updated_at,
    });
    expect(await roomStreamLength(id)).toBe(before.events);
    expect((await transcript(stack, user, id)).turns).toEqual([]);
  });

  it('skips a turn job whose room was stopped while it waited', async () => {
    const { id, turnJobId } = await waitingRoom();
    // Stopped behind the job's back (the stop route would also cancel it): the row alone says so.
    await stack.api.db('discussions').where({ id }).update({ status: 'stopped' });
    const events = await roomStreamLength(id);

    workers = await startWorkers(stack.env, { queues: ['llm'] });
    const job = await stack.waitForJob(turnJobId, user);
    expect(job).toMatchObject({ state: 'completed', result: { outcome: 'skipped', reason: 'the room is stopped at turn 0' } });
    expect(await roomRow(id)).toMatchObject({ status: 'stopped', current_turn: 0, speaking: false });
    expect(await roomStreamLength(id)).toBe(events);
    expect((await transcript(stack, user, id)).turns).toEqual([]);
  });
});
