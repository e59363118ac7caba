/**
 * A discussion turn handed back at shutdown. A worker that gets SIGTERM and
 * outlives its grace period aborts its active turn with reason `shutdown`;
 * the runtime hands the job back to the queue without spending a BullMQ
 * attempt, but the Postgres record counts the hand-back as an attempt. The
 * regression this pins (issue 14, item 4): the turn handler used to decide
 * "last attempt" from the Postgres count, so after a hand-back it could fail
 * the turn and pause the room while the runtime still retried the job, and it
 * misjudged the real last attempt. The runtime now decides (`ctx.willRetry`).
 *
 * Real worker processes and the real Ollama throughout. The only fault is an
 * Ollama address nothing listens on, for a worker whose turns must fail with
 * a retryable error (connection refused) on every attempt.
 */
import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { until } from '../support/until.ts';
import { startWorkerProcess, type WorkerChild } from '../support/worker-process.ts';
import { act, closed, makeAgents, makeRoom, roomEvents, transcript, waitForRoom } from './rooms.ts';

let stack: Stack;
let user: TestUser;
const children: WorkerChild[] = [];

beforeAll(async () => {
  // The API only: the worker processes below are the only ones taking jobs.
  stack = await startStack({ workers: false });
  user = await stack.user('member');
});
afterEach(() => {
  for (const w of children.splice(0)) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
});
afterAll(() => stack?.stop());

async function worker(extra: Record<string, string> = {}): Promise<WorkerChild> {
  const w = await startWorkerProcess(stack.env, extra);
  children.push(w);
  return w;
}

/** An address on loopback that refuses connections: a port the system handed out and we released. */
async function refusingAddress(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

const roomRow = (id: string) => stack.api.db('discussions').where({ id }).first();
const jobRow = (id: string) => stack.api.db('jobs').where({ id }).first();

/**
 * Starts a room whose turns are long (a topic asking for an essay, a high num_predict), waits until
 * turn 1 streams its first tokens on a worker with no grace period, then SIGTERMs that worker:
 * the turn is aborted mid-generation and handed back. Returns the room and its turn job's id.
 */
async function handBackMidTurn(): Promise<{ roomId: string; turnJobId: string; agentIds: string[] }> {
  const first = await worker({ PARLEY_SHUTDOWN_GRACE_MS: '0' });
  const agents = await makeAgents(stack, user, 2, { num_predict: 600, temperature: 0.9 });
  const room = await makeRoom(stack, user, {
    topic: 'Write a long, detailed essay, paragraph after paragraph, on whether cats or dogs make better companions.',
    agentIds: agents.map((a) => a.id),
    policy: { maxTurns: 2 },
  });
  await act(stack, user, room.id, 'start');
  const midTurn = await roomEvents(stack, user, room.id, { stopAfter: (e) => e.event === 'tokens' && e.data.turn === 1, timeoutMs: 120_000 });
  expect(midTurn.events.at(-1)).toMatchObject({ event: 'tokens', data: { turn: 1 } });
  const turnJobId = (await roomRow(room.id)).turn_job_id as string;

  first.child.kill('SIGTERM');
  expect(await first.exited()).toBe(0);
  // Handed back, not finished: the record is queued again, with the hand-back counted as attempt 1.
  expect(await jobRow(turnJobId)).toMatchObject({ state: 'queued', attempts: 1, error_code: 'INTERNAL', error_message: 'worker shut down; job handed back' });
  return { roomId: room.id, turnJobId, agentIds: agents.map((a) => a.id) };
}

describe('a discussion turn handed back at shutdown', () => {
  it('does not fail the turn or pause the room; the next worker runs the turn again and the room carries on', async () => {
    const { roomId, turnJobId, agentIds } = await handBackMidTurn();

    // BullMQ spent no attempt, the turn was not failed and the room still runs.
    const bull = await stack.api.jobs.queues.llm.getJob(turnJobId);
    // Waiting for a worker (BullMQ keeps prioritised jobs in their own waiting list).
    expect(await bull!.getState()).toBe('prioritized');
    expect(bull!.attemptsMade).toBe(0);
    expect(await roomRow(roomId)).toMatchObject({ status: 'running', status_reason: null, current_turn: 1, turn_job_id: turnJobId });
    expect((await transcript(stack, user, roomId)).turns).toEqual([]);

    // Short turns from here on (agents are read at each turn), so the rest of the room is quick on a busy Ollama.
    for (const id of agentIds)
      expect((await stack.request('PATCH', `/v1/agents/${id}`, { user, body: { params: { num_predict: 24, temperature: 0.7 } } })).status).toBe(200);
    await worker();
    const done = await waitForRoom(stack, user, roomId, closed);
    expect(done).toMatchObject({ status: 'finished', turn: 2, speaking: false });

    // Turn 1 was committed once, by the second attempt, and its job completed.
    const turns = (await transcript(stack, user, roomId)).turns;
    expect(turns.map((t: any) => [t.turn, t.status])).toEqual([
      [1, 'completed'],
      [2, 'completed'],
    ]);
    expect(turns[0]).toMatchObject({ jobId: turnJobId, attempt: 2 });
    expect(turns[0].text.length).toBeGreaterThan(0);
    expect(await jobRow(turnJobId)).toMatchObject({ state: 'completed', attempts: 2 });

    // Viewers saw turn 1 start twice (the restart) and finish once; the room never paused.
    const { events } = await roomEvents(stack, user, roomId, { timeoutMs: 10_000 });
    expect(events.filter((e) => e.event === 'turn_started' && e.data.turn === 1)).toHaveLength(2);
    expect(events.filter((e) => e.event === 'turn_finished').map((e) => [e.data.turn, e.data.status])).toEqual([
      [1, 'completed'],
      [2, 'completed'],
    ]);
    expect(events.filter((e) => e.event === 'status').map((e) => e.data.status)).not.toContain('paused');
  }, 300_000);

  it('after a hand-back, retries retryable failures without pausing, and pauses the room only on the last BullMQ attempt', async () => {
    const { roomId, turnJobId } = await handBackMidTurn();
    expect(await jobRow(turnJobId)).toMatchObject({ max_attempts: 3 });

    // Every turn on this worker fails to reach Ollama: UPSTREAM_UNAVAILABLE, which is retryable.
    const dead = await refusingAddress();
    await worker({ OLLAMA_HOST: dead, OLLAMA_HOSTS: dead, OLLAMA_RETRY_ATTEMPTS: '1', OLLAMA_CONNECT_TIMEOUT_MS: '1000' });
    const paused = await waitForRoom(stack, user, roomId, (d) => d.status === 'paused', 120_000);

    // Final on BullMQ's third attempt, although Postgres counts four (the hand-back was one).
    const failed = await stack.waitForJob(turnJobId, user, 60_000);
    expect(failed).toMatchObject({ state: 'failed', attempts: 4, error: { code: 'UPSTREAM_UNAVAILABLE' } });
    // The record is written before the worker hands its failure to BullMQ, so BullMQ may still show
    // the job active for a moment; once it leaves `active` it must be failed, not queued for a retry.
    const bullState = await until('BullMQ to settle the turn job', async () => {
      const state = await stack.api.jobs.queues.llm.getJobState(turnJobId);
      return state !== 'active' && state;
    });
    expect(bullState).toBe('failed');
    const bull = await stack.api.jobs.queues.llm.getJob(turnJobId);
    expect(bull!.attemptsMade).toBe(3);
    expect(paused.statusReason).toMatch(/^turn 1 \(Ada\) failed: UPSTREAM_UNAVAILABLE: /);

    // The turn was failed once, by the last attempt; the retried attempts before it did not pause the room.
    const turns = (await transcript(stack, user, roomId)).turns;
    expect(turns.map((t: any) => [t.turn, t.status, t.attempt])).toEqual([[1, 'failed', 4]]);
    const { events } = await roomEvents(stack, user, roomId, { stopAfter: (e) => e.event === 'status' && e.data.status === 'paused', timeoutMs: 10_000 });
    const story = events
      .filter((e) => e.event === 'turn_started' || e.event === 'turn_finished' || e.event === 'status')
      .map((e) => (e.event === 'status' ? `status:${e.data.status}` : `${e.event}:${e.data.status ?? e.data.turn}`));
    expect(story).toEqual(['status:running', 'turn_started:1', 'turn_started:1', 'turn_started:1', 'turn_started:1', 'turn_finished:failed', 'status:paused']);
  }, 300_000);
});
