/**
 * A room never silently stalls. No `llm` worker runs in this stack, so turn
 * jobs stay queued and the faults can be placed by hand: a queued turn job
 * cancelled behind the room's back, and a turn whose job died mid-speech.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { act, makeAgents, makeRoom, waitForRoom } from './rooms.ts';

let stack: Stack;
let user: TestUser;

beforeAll(async () => {
  stack = await startStack({ workers: ['system'], env: { PARLEY_SWEEP_INTERVAL_MS: '500' } });
  user = await stack.user('member');
});
afterAll(() => stack?.stop());

const room = (id: string) => stack.api.db('discussions').where({ id }).first();

describe('discussion watchdog', () => {
  it('reschedules the next turn when the turn job was cancelled before it ran', async () => {
    const agents = await makeAgents(stack, user, 2);
    const d = await makeRoom(stack, user, { agentIds: agents.map((a) => a.id) });
    await act(stack, user, d.id, 'start');
    const before = await room(d.id);
    expect(before).toMatchObject({ status: 'running', speaking: false, run: 0 });
    // The owner cancels the waiting turn job through the jobs API: the room's own path never hears of it.
    const c = await stack.request('DELETE', `/v1/jobs/${before.turn_job_id}`, { user });
    expect(c.json.state).toBe('cancelled');

    let after = await room(d.id);
    for (const deadline = Date.now() + 60_000; after.turn_job_id === before.turn_job_id; after = await room(d.id)) {
      if (Date.now() > deadline) throw new Error('the watchdog did not reschedule');
      await new Promise((res) => setTimeout(res, 250));
    }
    expect(after).toMatchObject({ status: 'running', speaking: false, run: 1, current_turn: 0 });
    const job = await stack.api.db('jobs').where({ id: after.turn_job_id }).first();
    expect(job).toMatchObject({ kind: 'discussion.turn', state: 'queued', input: { discussionId: d.id, turn: 1, run: 1 } });
    expect(await stack.api.jobs.queues.llm.getJob(after.turn_job_id)).toBeTruthy();
  });

  it('pauses a room, with the reason, when its speaking turn ended without a commit', async () => {
    const agents = await makeAgents(stack, user, 2);
    const d = await makeRoom(stack, user, { agentIds: agents.map((a) => a.id) });
    await act(stack, user, d.id, 'start');
    const r = await room(d.id);
    // As if a worker claimed turn 1 and then the job was failed by the sweeper (STALLED) mid-speech.
    await stack.api.db('discussions').where({ id: d.id }).update({ current_turn: 1, speaking: true });
    await (await stack.api.jobs.queues.llm.getJob(r.turn_job_id))?.remove();
    await stack.api.jobs.store.finish(r.turn_job_id, { state: 'failed', error: { code: 'STALLED', message: 'job vanished from its queue while active' } });

    const paused = await waitForRoom(stack, user, d.id, (x) => x.status === 'paused', 60_000);
    expect(paused.statusReason).toBe('turn 1 ended without being committed (its job failed: job vanished from its queue while active)');
    expect(paused.speaking).toBe(false);
    // Resume continues with turn 2.
    await act(stack, user, d.id, 'resume');
    const resumed = await room(d.id);
    const job = await stack.api.db('jobs').where({ id: resumed.turn_job_id }).first();
    expect(job.input).toMatchObject({ turn: 2, run: 1 });
  });
});
