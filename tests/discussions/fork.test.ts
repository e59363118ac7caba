/**
 * What a fork inherits: the room exactly as it was at the end of turn N (its
 * turns 1..N and the human messages posted before turn N + 1 began), even
 * while turn N + 1 is still speaking; and the source room's token count up to
 * the fork point, moderator calls included, as the source room counts them (a
 * moderator call that ends the room by consensus counts in the room, after
 * the fork point).
 *
 * Real API, workers and Ollama; the faults are a proxy in front of Ollama
 * that holds a turn's chat request, so a turn is mid-speech when the test
 * forks (or answers a moderator call with a consensus the real model does not
 * give on demand), and a second API process that dies at a failpoint between
 * a human message's stream entry and its transcript document.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { until } from '../support/until.ts';
import { act, closed, makeAgents, makeRoom, transcript, waitForRoom } from './rooms.ts';

let proxy: FaultProxy;
let stack: Stack;
let user: TestUser;

beforeAll(async () => {
  proxy = await startFaultProxy(process.env.OLLAMA_HOST ?? 'http://127.0.0.1:11500');
  stack = await startStack({ env: { OLLAMA_HOST: proxy.url, OLLAMA_HOSTS: proxy.url } });
  user = await stack.user('member');
});
afterAll(async () => {
  await stack?.stop();
  await proxy?.close();
});

const chats = () => proxy.log.filter((l) => l.method === 'POST' && l.path === '/api/chat').length;

/** Holds the next chat request no earlier hold takes, until the returned function is called. */
function holdChat(): () => void {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  proxy.inject((m, p) => m === 'POST' && p === '/api/chat', { kind: 'hold', until: held });
  return release;
}

describe('fork', () => {
  it('from turn N while turn N+1 is speaking copies only the messages posted before turn N+1 began', async () => {
    const agents = await makeAgents(stack, user, 2, { num_predict: 8, temperature: 0 });
    const room = await makeRoom(stack, user, { agentIds: agents.map((a) => a.id), policy: { maxTurns: 2 } });
    const post = async (text: string) => {
      const r = await stack.request('POST', `/v1/discussions/${room.id}/messages`, { user, body: { text } });
      expect(r.status, r.text).toBe(201);
      return r.json;
    };
    const before = chats();
    const releaseFirst = holdChat();
    const releaseSecond = holdChat();
    await act(stack, user, room.id, 'start');
    // Turn 1 is speaking (its turn_started is written before its chat request): a message now is before turn 2.
    await until('turn 1 to be speaking', () => chats() === before + 1, { timeoutMs: 60_000 });
    const heard = await post('Posted while turn 1 was speaking.');
    releaseFirst();
    // Turn 2 is speaking, its transcript document not yet written: a message now is after turn 2 began.
    await until('turn 2 to be speaking', () => chats() === before + 2, { timeoutMs: 120_000 });
    const late = await post('Posted while turn 2 was speaking.');

    const f = await stack.request('POST', `/v1/discussions/${room.id}/fork`, { user, body: { fromTurn: 1 } });
    expect(f.status, f.text).toBe(201);
    releaseSecond();
    const copied = await transcript(stack, user, f.json.id);
    expect(copied.turns.map((t: any) => t.turn)).toEqual([1]);
    expect(copied.messages.map((m: any) => m.text)).toEqual([heard.text]);

    await waitForRoom(stack, user, room.id, closed);
    const source = await transcript(stack, user, room.id);
    // The source room agrees on the timeline: the late message came after turn 2 began.
    expect(heard.seq).toBeLessThan(source.turns[1].startedSeq);
    expect(late.seq).toBeGreaterThan(source.turns[1].startedSeq);
  }, 300_000);

  it('copies a message the turns saw whose transcript document was never written (the API died between the stream and MongoDB)', async () => {
    const agents = await makeAgents(stack, user, 2, { num_predict: 8, temperature: 0 });
    const room = await makeRoom(stack, user, { agentIds: agents.map((a) => a.id), policy: { maxTurns: 2 } });
    // Paused after turn 1: pause while turn 1 is speaking (it finishes, and turn 2 is not scheduled).
    const before = chats();
    const releaseFirst = holdChat();
    await act(stack, user, room.id, 'start');
    await until('turn 1 to be speaking', () => chats() === before + 1, { timeoutMs: 60_000 });
    await act(stack, user, room.id, 'pause');
    releaseFirst();
    await waitForRoom(stack, user, room.id, (d) => d.status === 'paused' && !d.speaking);

    // A second API process that dies right after the message's stream entry, before its transcript document.
    let api: ChildProcess | undefined;
    try {
      const port = 20_000 + Math.floor(Math.random() * 20_000);
      api = spawn(process.execPath, ['--import', 'tsx', 'api/main.ts'], {
        env: { ...stack.env, PORT: String(port), PARLEY_FAILPOINTS: 'message.after-stream' },
        stdio: 'ignore',
      });
      const died = new Promise<void>((r) => api!.once('exit', () => r()));
      const base = `http://127.0.0.1:${port}`;
      await until(
        'the second API to be up',
        () =>
          fetch(`${base}/healthz`).then(
            (r) => r.ok,
            () => false,
          ),
        { timeoutMs: 60_000, everyMs: 100 },
      );
      const text = 'Posted by an API that died before storing it.';
      const sent = await fetch(`${base}/v1/discussions/${room.id}/messages`, {
        method: 'POST',
        headers: { ...user.auth, 'content-type': 'application/json' },
        body: JSON.stringify({ text }),
      }).then(
        (r) => r.status,
        () => 0,
      );
      expect(sent).toBe(0);
      await died;

      // Turn 2 starts after it and hears it (the turn reads the room stream too); the transcript never stores it.
      await act(stack, user, room.id, 'resume');
      await waitForRoom(stack, user, room.id, closed);
      const source = await transcript(stack, user, room.id, true);
      expect(source.turns.map((t: any) => t.turn)).toEqual([1, 2]);
      expect(source.turns[1].prompt.map((m: any) => m.content)).toContain(`[audience] ${user.username}: ${text}`);
      expect(source.messages).toEqual([]);

      // The fork from turn 1 inherits the room as turn 2 saw it: the message included.
      const f = await stack.request('POST', `/v1/discussions/${room.id}/fork`, { user, body: { fromTurn: 1 } });
      expect(f.status, f.text).toBe(201);
      const copied = await transcript(stack, user, f.json.id);
      expect(copied.turns.map((t: any) => t.turn)).toEqual([1]);
      expect(copied.messages.map((m: any) => [m.authorName, m.text])).toEqual([[user.username, text]]);
      expect(copied.messages[0].seq).toBeGreaterThan(copied.turns[0].startedSeq);
    } finally {
      api?.kill('SIGKILL');
    }
  }, 300_000);

  it('counts the moderator’s usage up to the fork point in the fork’s tokensUsed, as the source room counts it', async () => {
    const agents = await makeAgents(stack, user, 2, { num_predict: 8, temperature: 0 });
    const mod = await stack.request('POST', '/v1/agents', {
      user,
      body: { name: 'Moderator', persona: 'You are a fair moderator who gives everyone a say.', params: { num_predict: 24, temperature: 0 } },
    });
    expect(mod.status, mod.text).toBe(201);
    const room = await makeRoom(stack, user, {
      agentIds: agents.map((a) => a.id),
      policy: { turns: { kind: 'moderator', moderatorId: mod.json.id }, maxTurns: 2 },
    });
    await act(stack, user, room.id, 'start');
    const done = await waitForRoom(stack, user, room.id, closed);
    const source = await transcript(stack, user, room.id);
    expect(source.turns.length).toBeGreaterThanOrEqual(1);
    const moderated = source.turns.filter((t: any) => t.moderatorUsage);
    expect(moderated.length).toBeGreaterThanOrEqual(1);
    const tokens = (u: any) => (u ? u.promptTokens + u.completionTokens : 0);

    // Forked at the end: the fork starts from the source room's own count.
    const whole = await stack.request('POST', `/v1/discussions/${room.id}/fork`, { user, body: { fromTurn: source.turns.length } });
    expect(whole.status, whole.text).toBe(201);
    expect(whole.json.tokensUsed).toBe(done.tokensUsed);

    // Forked at turn 1: turn 1's speaker and the moderator call that picked it.
    const first = await stack.request('POST', `/v1/discussions/${room.id}/fork`, { user, body: { fromTurn: 1 } });
    expect(first.status, first.text).toBe(201);
    expect(first.json.tokensUsed).toBe(tokens(source.turns[0].usage) + tokens(source.turns[0].moderatorUsage));
  }, 300_000);

  it('counts a moderator call that ends the room by declaring consensus in its tokensUsed, and meters it to the owner as the turn job’s usage', async () => {
    const agents = await makeAgents(stack, user, 2, { num_predict: 8, temperature: 0 });
    const mod = await stack.request('POST', '/v1/agents', {
      user,
      // A persona of its own: a moderator call is cacheable, and one answered from the cache would not reach the proxy.
      body: { name: 'Moderator', persona: `You are a fair moderator (${randomUUID()}).`, params: { num_predict: 24, temperature: 0 } },
    });
    expect(mod.status, mod.text).toBe(201);
    const room = await makeRoom(stack, user, {
      agentIds: agents.map((a) => a.id),
      policy: { turns: { kind: 'moderator', moderatorId: mod.json.id }, maxTurns: 4 },
    });
    // Chats: turn 1's moderator and speaker, turn 2's moderator and speaker (held), then turn 3's moderator, which
    // (a fault: the real model does not declare consensus on demand) answers consensus with a known usage.
    const before = chats();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    proxy.inject((m, p) => m === 'POST' && p === '/api/chat' && chats() === before + 3, { kind: 'hold', until: held });
    await act(stack, user, room.id, 'start');
    await until('turn 2 to be speaking', () => chats() === before + 4, { timeoutMs: 120_000 });
    const speaking = await stack.api.db('discussions').where({ id: room.id }).first();
    const next = agents.find((a) => a.id !== speaking.speaker_id)!;
    const answer = {
      message: { role: 'assistant', content: JSON.stringify({ next: next.name, consensus: true }) },
      done: true,
      prompt_eval_count: 50,
      eval_count: 10,
    };
    proxy.inject((m, p) => m === 'POST' && p === '/api/chat', {
      kind: 'respond',
      status: 200,
      headers: { 'content-type': 'application/x-ndjson' },
      body: `${JSON.stringify({ model: 'moderator', created_at: new Date().toISOString(), ...answer, done_reason: 'stop' })}\n`,
    });
    release();

    const done = await waitForRoom(stack, user, room.id, closed);
    expect(done).toMatchObject({ status: 'finished', statusReason: 'the moderator declared consensus' });
    const source = await transcript(stack, user, room.id);
    expect(source.turns.map((t: any) => t.turn)).toEqual([1, 2]);
    const tokens = (u: any) => (u ? u.promptTokens + u.completionTokens : 0);
    const turnsTokens = source.turns.reduce((n: number, t: any) => n + tokens(t.usage) + tokens(t.moderatorUsage), 0);
    // The room counts its turns and the moderator call that ended it.
    expect(done.tokensUsed).toBe(turnsTokens + 60);
    // The owner is metered for it: it is the turn 3 job's own usage (recorded in usage_daily and the budget with the job).
    const job = await stack.api
      .db('jobs')
      .where({ kind: 'discussion.turn' })
      .whereRaw(`input->>'discussionId' = ?`, [room.id])
      .whereRaw(`(input->>'turn')::int = 3`)
      .first();
    expect(job).toMatchObject({ state: 'completed', owner_id: user.id, tokens_in: 50, tokens_out: 10 });
    expect(job.result).toMatchObject({ outcome: 'finished', usage: { promptTokens: 50, completionTokens: 10 } });
    // A fork from turn 2 starts from the count at the end of turn 2: the consensus call came after it.
    const f = await stack.request('POST', `/v1/discussions/${room.id}/fork`, { user, body: { fromTurn: 2 } });
    expect(f.status, f.text).toBe(201);
    expect(f.json.tokensUsed).toBe(turnsTokens);
  }, 300_000);
});
