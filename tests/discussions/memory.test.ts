/**
 * Memory on the real stack: recent turns in Redis, transcripts in MongoDB,
 * and the summarisation job once the transcript outgrows the room's prompt
 * budget — after which prompts carry the summary and stay within budget.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { SUMMARY_HEADER } from '../../workers/discussions/context.ts';
import { act, closed, makeAgents, makeRoom, transcript, waitForRoom } from './rooms.ts';

let stack: Stack;
let user: TestUser;

beforeAll(async () => {
  stack = await startStack();
  user = await stack.user('member');
});
afterAll(() => stack?.stop());

async function summaryJobs(roomId: string): Promise<any[]> {
  return stack.api.db('jobs').where({ kind: 'discussion.summarize' }).whereRaw(`input->>'discussionId' = ?`, [roomId]).orderBy('queued_at', 'asc');
}

async function until<T>(fn: () => Promise<T | undefined>, timeoutMs = 240_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('memory and context', () => {
  it('summarises older turns once the transcript exceeds the budget, and every prompt stays within it', async () => {
    const agents = await makeAgents(stack, user, 2, { num_predict: 40, temperature: 0.7 });
    // Room for more turns than the test runs, so it cannot reach maxTurns
    // before the pause lands (a pause lets the turn in flight finish).
    const room = await makeRoom(stack, user, { agentIds: agents.map((a) => a.id), policy: { maxTurns: 10, contextTokens: 200 } });
    await act(stack, user, room.id, 'start');

    // The turn whose commit makes the transcript too long for the budget schedules the summary.
    const [job] = await until(async () => ((await summaryJobs(room.id)).length ? summaryJobs(room.id) : undefined));
    // Hold the room while it is written, so the next turns demonstrably use it.
    await act(stack, user, room.id, 'pause');
    const summarised = await until(async () => {
      const row = await stack.api.db('jobs').where({ id: job.id }).first();
      return ['completed', 'failed', 'cancelled'].includes(row.state) ? row : undefined;
    });
    expect(summarised.state).toBe('completed');
    expect(summarised.result).toMatchObject({ written: true, upToTurn: job.input.upToTurn });
    const paused = await waitForRoom(stack, user, room.id, (d) => !d.speaking);
    const pausedAt = paused.turn;
    await act(stack, user, room.id, 'resume');
    // Once a turn after the resume has been committed, pause again (the turn in
    // flight finishes and is kept) and stop the quiet room: the test needs one
    // turn that read the summary, not the rest of the ten.
    await waitForRoom(stack, user, room.id, (d) => closed(d) || d.turn > pausedAt + 1 || (d.turn === pausedAt + 1 && !d.speaking));
    await act(stack, user, room.id, 'pause', 200).catch(() => undefined);
    const quiet = await waitForRoom(stack, user, room.id, (d) => closed(d) || !d.speaking);
    if (!closed(quiet)) await act(stack, user, room.id, 'stop');
    await waitForRoom(stack, user, room.id, closed);

    const t = await transcript(stack, user, room.id, true);
    expect(t.summary).toMatchObject({ discussionId: room.id });
    expect(t.summary.upToTurn).toBeGreaterThanOrEqual(job.input.upToTurn);
    expect(t.summary.text.length).toBeGreaterThan(0);
    for (const turn of t.turns) {
      expect(turn.context.estimatedTokens).toBeLessThanOrEqual(turn.context.budget);
      expect(turn.context.budget).toBe(200);
    }
    // The turns after the resume read the summary instead of the turns it covers.
    const after = t.turns.filter((x: any) => x.turn > pausedAt);
    expect(after.length).toBeGreaterThanOrEqual(1);
    for (const turn of after) {
      expect(turn.context.summaryUpToTurn).toBeGreaterThanOrEqual(job.input.upToTurn);
      // The summary is a user message of its own after the system message, never in it (it is written from what anyone said).
      const summaryAt = turn.prompt.findIndex((m: any) => m.content.startsWith(SUMMARY_HEADER));
      expect(summaryAt).toBeGreaterThan(0);
      expect(turn.prompt[summaryAt].role).toBe('user');
      expect(turn.prompt[0].content).not.toContain(SUMMARY_HEADER);
      const verbatim = turn.prompt
        .slice(summaryAt + 1, -1)
        .map((m: any) => m.content)
        .join('\n');
      // A later turn may repeat an earlier one word for word (a small model repeats itself): such a text is
      // verbatim as the later turn's, and proves nothing about the covered one.
      const later = t.turns.filter((x: any) => x.turn > turn.context.summaryUpToTurn).map((x: any) => x.text.trim());
      for (const covered of t.turns.filter((x: any) => x.turn <= turn.context.summaryUpToTurn && x.text.trim().length > 20))
        if (!later.some((text: string) => text.includes(covered.text.trim()))) expect(verbatim).not.toContain(covered.text.trim());
    }

    // Short-term memory holds the recent turns in Redis, newest first, as committed.
    const recent = (await stack.api.redis.lrange(stack.api.keys.roomMemory(room.id), 0, -1)).map((r) => JSON.parse(r));
    expect(recent.map((r) => r.turn)).toEqual(t.turns.map((x: any) => x.turn).reverse());
    expect(recent.map((r) => r.text)).toEqual(t.turns.map((x: any) => x.text).reverse());
  }, 500_000);
});
