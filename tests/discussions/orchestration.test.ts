/**
 * Turn orchestration on the real model: one speaker at a time per room while
 * rooms run side by side, pause/resume, the moderator policy, and a failing
 * turn that pauses its room with a visible reason.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { until } from '../support/until.ts';
import { createBudgets } from '../../platform/usage/index.ts';
import { act, closed, makeAgents, makeRoom, roomEvents, transcript, turnsFromEvents, waitForRoom } from './rooms.ts';

let stack: Stack;
let user: TestUser;

beforeAll(async () => {
  stack = await startStack();
  user = await stack.user('member');
});
afterAll(() => stack?.stop());

/** The turn jobs of a room from the record, oldest first. */
async function turnJobs(
  roomId: string,
): Promise<{ id: string; state: string; turn: number; started_at: Date | null; finished_at: Date | null; result: any }[]> {
  const rows = await stack.api.db('jobs').where({ kind: 'discussion.turn' }).whereRaw(`input->>'discussionId' = ?`, [roomId]).orderBy('queued_at', 'asc');
  return rows.map((r: any) => ({ ...r, turn: r.input.turn }));
}

describe('turn orchestration', () => {
  it('keeps strict turn order in every room while three rooms run at once', async () => {
    const params = { num_predict: 12, temperature: 0.7 };
    const [two, three] = await Promise.all([makeAgents(stack, user, 2, params), makeAgents(stack, user, 3, params)]);
    const rooms = await Promise.all([
      makeRoom(stack, user, { topic: 'Is tea better than coffee?', agentIds: two.map((a) => a.id), policy: { maxTurns: 4 } }),
      makeRoom(stack, user, { topic: 'Should cities ban cars?', agentIds: three.map((a) => a.id), policy: { maxTurns: 4 } }),
      makeRoom(stack, user, { topic: 'Are sandwiches salads?', agentIds: [two[1].id, two[0].id], policy: { maxTurns: 4 } }),
    ]);
    const readers = rooms.map((r) => roomEvents(stack, user, r.id));
    await Promise.all(rooms.map((r) => act(stack, user, r.id, 'start')));
    const streams = await Promise.all(readers);

    for (const [i, room] of rooms.entries()) {
      const events = streams[i]!.events;
      // Room-level seq: 1, 2, 3, ... with no gap and no duplicate.
      expect(events.map((e) => e.id)).toEqual(events.map((_, k) => k + 1));
      // Strictly one speaker at a time: started n, tokens of n only, finished n, then n + 1.
      let speaking: number | undefined;
      let last = 0;
      for (const e of events) {
        if (e.event === 'turn_started') {
          expect(speaking).toBeUndefined();
          expect(e.data.turn).toBe(last + 1);
          speaking = e.data.turn;
        } else if (e.event === 'tokens') {
          expect(e.data.turn).toBe(speaking);
        } else if (e.event === 'turn_finished') {
          expect(e.data.turn).toBe(speaking);
          last = speaking!;
          speaking = undefined;
        }
      }
      expect(last).toBe(4);
      expect(events.at(-1)).toMatchObject({ event: 'status', data: { status: 'finished' } });

      // Round-robin in the room's order, and the transcript says what was streamed.
      const agents = room.agents.map((a: any) => a.id);
      const t = await transcript(stack, user, room.id);
      expect(t.turns.map((x: any) => x.turn)).toEqual([1, 2, 3, 4]);
      expect(t.turns.map((x: any) => x.agentId)).toEqual([1, 2, 3, 4].map((n) => agents[(n - 1) % agents.length]));
      const streamed = turnsFromEvents(events);
      for (const turn of t.turns) {
        expect(turn.status).toBe('completed');
        expect(turn.text).toBe(streamed.get(turn.turn)!.text);
        expect(turn.usage.completionTokens).toBeGreaterThan(0);
      }

      // The record agrees: one turn job per turn, none overlapping another of the same room.
      // The room's `finished` comes from the last turn's commit; that turn job's own terminal record follows it
      // (the worker writes it after the commit, in a group commit), so wait for the record, not for time.
      const jobs = await until('every turn job of the room to have its terminal record', async () => {
        const spoke = (await turnJobs(room.id)).filter((j) => j.result?.outcome === 'spoke');
        return spoke.length >= 4 && spoke;
      });
      expect(jobs.map((j) => j.turn)).toEqual([1, 2, 3, 4]);
      for (let k = 1; k < jobs.length; k++) expect(jobs[k]!.started_at!.getTime()).toBeGreaterThanOrEqual(jobs[k - 1]!.finished_at!.getTime() - 1000);
    }

    // The rooms ran side by side: every room's first turn started before any room's last turn did.
    const all = await Promise.all(rooms.map((r) => turnJobs(r.id)));
    const firstStarts = all.map((js) => js.find((j) => j.turn === 1)!.started_at!.getTime());
    const lastStarts = all.map((js) => js.find((j) => j.turn === 4)!.started_at!.getTime());
    expect(Math.max(...firstStarts)).toBeLessThan(Math.min(...lastStarts));
  }, 600_000);

  it('pause lets the current turn finish and schedules nothing until resume', async () => {
    const agents = await makeAgents(stack, user, 2, { num_predict: 16 });
    const room = await makeRoom(stack, user, { agentIds: agents.map((a) => a.id), policy: { maxTurns: 3 } });
    const reader = roomEvents(stack, user, room.id);
    await act(stack, user, room.id, 'start');
    await waitForRoom(stack, user, room.id, (d) => d.speaking && d.turn === 1);
    const paused = await act(stack, user, room.id, 'pause');
    expect(paused.status).toBe('paused');

    // The turn in progress commits; its commit sees `paused` and records no next turn.
    const idle = await waitForRoom(stack, user, room.id, (d) => !d.speaking);
    expect(idle).toMatchObject({ status: 'paused', turn: 1 });
    expect((await transcript(stack, user, room.id)).turns.map((t: any) => [t.turn, t.status])).toEqual([[1, 'completed']]);
    expect((await turnJobs(room.id)).map((j) => j.turn)).toEqual([1]);
    await act(stack, user, room.id, 'pause', 409);

    const resumed = await act(stack, user, room.id, 'resume');
    expect(resumed.status).toBe('running');
    await waitForRoom(stack, user, room.id, closed);
    const events = (await reader).events;
    expect(events.filter((e) => e.event === 'status').map((e) => e.data.status)).toEqual(['running', 'paused', 'running', 'finished']);
    // Turn 1 finished after the pause and before the resume.
    const seqOf = (pred: (e: any) => boolean) => events.find(pred)!.id;
    expect(seqOf((e) => e.event === 'turn_finished' && e.data.turn === 1)).toBeGreaterThan(seqOf((e) => e.data.status === 'paused'));
    expect(seqOf((e) => e.event === 'turn_started' && e.data.turn === 2)).toBeGreaterThan(
      seqOf((e) => e.event === 'status' && e.data.status === 'running' && e.id > 2),
    );
    expect((await transcript(stack, user, room.id)).turns.map((t: any) => t.turn)).toEqual([1, 2, 3]);
  }, 300_000);

  it('a moderator picks valid speakers, never the same one twice in a row, and its tokens are counted', async () => {
    // A user of its own, so its usage rows hold this room alone.
    const owner = await stack.user('member');
    const agents = await makeAgents(stack, owner, 3, { num_predict: 12 });
    const mod = (
      await stack.request('POST', '/v1/agents', {
        user: owner,
        body: { name: 'Moderator', persona: 'You are a fair moderator who gives everyone a say.', params: { num_predict: 32 } },
      })
    ).json;
    const room = await makeRoom(stack, owner, {
      agentIds: agents.map((a) => a.id),
      policy: { turns: { kind: 'moderator', moderatorId: mod.id }, maxTurns: 4 },
    });
    expect(room.moderator).toMatchObject({ id: mod.id, name: 'Moderator' });
    await act(stack, owner, room.id, 'start');
    const done = await waitForRoom(stack, owner, room.id, closed);
    expect(done.status).toBe('finished');
    const t = await transcript(stack, owner, room.id);

    // usage_daily = every job's recorded usage + each moderator call, which the transcript shows per turn.
    const asked = t.turns.filter((x: any) => x.moderatorUsage);
    expect(asked.length).toBeGreaterThanOrEqual(1);
    const moderatorTokens = asked.reduce((n: number, x: any) => n + x.moderatorUsage.promptTokens + x.moderatorUsage.completionTokens, 0);
    expect(moderatorTokens).toBeGreaterThan(0);
    // Every job of the room's owner ended (a summary or a last scheduled turn may still be settling after the room closed).
    await until(
      'every job of the owner to end',
      async () => {
        const open = await stack.api.db('jobs').where({ owner_id: owner.id }).whereIn('state', ['queued', 'active']).count({ n: '*' }).first();
        return Number(open?.n) === 0;
      },
      { timeoutMs: 60_000 },
    );
    const jobs = await stack.api.db('jobs').where({ owner_id: owner.id }).sum({ p: 'tokens_in', c: 'tokens_out' }).first();
    const daily = await stack.api.db('usage_daily').where({ user_id: owner.id }).sum({ p: 'prompt_tokens', c: 'completion_tokens' }).first();
    expect(Number(daily?.p) + Number(daily?.c)).toBe(Number(jobs?.p) + Number(jobs?.c) + moderatorTokens);
    // The owner's budget counter holds the same: the moderator's calls count against the budget too, once
    // every turn job has settled (settlement follows each terminal write).
    const budgets = createBudgets({ db: stack.api.db, redis: stack.api.redis, prefix: stack.prefix });
    const total = Number(daily?.p) + Number(daily?.c);
    await until('the budget counter to hold usage_daily', async () => (await budgets.usage(owner.id)).day.usedTokens === total, { timeoutMs: 30_000 });
    expect(t.turns.length).toBeGreaterThanOrEqual(1);
    const ids = new Set(agents.map((a) => a.id));
    for (const [k, turn] of t.turns.entries()) {
      expect(ids.has(turn.agentId)).toBe(true);
      expect(['moderator', 'fallback']).toContain(turn.pickedBy);
      if (k > 0) expect(turn.agentId).not.toBe(t.turns[k - 1].agentId);
    }
  }, 300_000);

  it('a turn that cannot succeed pauses its room with the reason, keeping the failed turn', async () => {
    const good = await makeAgents(stack, user, 1, { num_predict: 8 });
    // Installed, but an embedding model: every chat turn is refused upstream (400 "does not support chat").
    const bad = (await stack.request('POST', '/v1/agents', { user, body: { name: 'Ghost', persona: 'You do not exist.', model: 'all-minilm' } })).json;
    const room = await makeRoom(stack, user, { agentIds: [bad.id, good[0].id], policy: { maxTurns: 3 } });
    const reader = roomEvents(stack, user, room.id, { stopAfter: (e) => e.event === 'status' && e.data.status === 'paused' });
    await act(stack, user, room.id, 'start');
    const paused = await waitForRoom(stack, user, room.id, (d) => d.status === 'paused');
    expect(paused.statusReason).toMatch(/turn 1 \(Ghost\) failed: UPSTREAM_REJECTED/);
    expect(paused.speaking).toBe(false);
    const events = (await reader).events;
    expect(events.find((e) => e.event === 'turn_finished')).toMatchObject({ data: { turn: 1, status: 'failed', error: { code: 'UPSTREAM_REJECTED' } } });
    expect(events.at(-1)).toMatchObject({ event: 'status', data: { status: 'paused', reason: paused.statusReason } });
    const t = await transcript(stack, user, room.id);
    expect(t.turns).toEqual([
      expect.objectContaining({ turn: 1, agentName: 'Ghost', status: 'failed', error: expect.objectContaining({ code: 'UPSTREAM_REJECTED' }) }),
    ]);

    // Resume moves on to the next speaker; the room does not stall.
    await act(stack, user, room.id, 'resume');
    await waitForRoom(stack, user, room.id, (d) => d.turn >= 2 && !d.speaking);
    expect((await transcript(stack, user, room.id)).turns[1]).toMatchObject({ turn: 2, agentId: good[0].id, status: 'completed' });
  }, 300_000);
});
