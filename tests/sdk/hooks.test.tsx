/**
 * The React hooks with React Testing Library, on a happy-dom document,
 * against the real API: live job text, submitting, polling a job, models and
 * usage, a live room, and no connection left behind after an unmount, over
 * SSE and over Socket.IO.
 */
import '../support/dom.ts';
import { act, cleanup, render, renderHook, screen, waitFor } from '@testing-library/react';
import type { ReactNode } from 'react';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createClient, type ParleyClient } from '../../sdk/index.ts';
import { ParleyProvider, useDiscussion, useJob, useJobStream, useModels, useSubmitJob, useUsage } from '../../sdk/react/index.ts';
import { startStack, type Stack, type TestUser } from '../harness.ts';

vi.setConfig({ testTimeout: 300_000 });

let stack: Stack;
let user: TestUser;
let client: ParleyClient;
const wrapper = ({ children }: { children: ReactNode }) => <ParleyProvider client={client}>{children}</ParleyProvider>;

beforeAll(async () => {
  stack = await startStack();
  user = await stack.user('member');
  client = createClient({ baseUrl: stack.base, auth: { username: user.username, password: user.password } });
});
afterEach(() => cleanup());
afterAll(async () => {
  client?.close();
  await stack?.stop();
});

describe('job hooks', () => {
  it('useJobStream accumulates the text and ends with the state, usage and result', async () => {
    const job = await client.jobs.submit('llm.chat', {
      messages: [{ role: 'user', content: 'Say hello.' }],
      options: { num_predict: 12, temperature: 0 },
      cache: 'bypass',
    });
    const { result } = renderHook(() => useJobStream<'llm.chat'>(job.id), { wrapper });
    await waitFor(() => expect(result.current.status).toBe('done'), { timeout: 280_000 });
    expect(result.current.state).toBe('completed');
    expect(result.current.result?.text).toBe(result.current.text);
    expect(result.current.text.length).toBeGreaterThan(0);
    expect(result.current.usage?.completionTokens).toBeGreaterThan(0);
  });

  it('useSubmitJob submits, and useJob follows the job to its end', async () => {
    function Ping() {
      const { submit, job, pending } = useSubmitJob();
      const { job: view } = useJob(job?.id ?? null, { pollMs: 200 });
      return (
        <div>
          <button onClick={() => void submit('system.ping', { echo: 'from a hook', holdMs: 300 })} disabled={pending}>
            ping
          </button>
          <output>{view ? `${view.state}:${(view.result as { echo?: string } | null)?.echo ?? ''}` : 'none'}</output>
        </div>
      );
    }
    render(<Ping />, { wrapper });
    act(() => screen.getByText('ping').click());
    await waitFor(() => expect(screen.getByRole('status').textContent).toBe('completed:from a hook'), { timeout: 60_000 });
  });
});

describe('models and usage', () => {
  it('useModels lists the installed models and useUsage reports usage', async () => {
    const models = renderHook(() => useModels(), { wrapper });
    const usage = renderHook(() => useUsage(), { wrapper });
    await waitFor(() => expect(models.result.current.models?.map((m) => m.name)).toContain('smollm2:135m'));
    await waitFor(() => expect(usage.result.current.usage?.totals.jobs).toBeGreaterThanOrEqual(1));
  });
});

describe('useDiscussion', () => {
  it('shows the room live: speaker, tokens, status, and the transcript at the end', async () => {
    const agents = [];
    for (const name of ['Kai', 'Lea'])
      agents.push(await client.agents.create({ name, persona: `${name}, brief.`, params: { num_predict: 12, temperature: 0 } }));
    const room = await client.discussions.create({ topic: 'Rain or sun?', agentIds: agents.map((a) => a.id), policy: { maxTurns: 2 } });
    const { result } = renderHook(() => useDiscussion(room.id), { wrapper });
    await waitFor(() => expect(result.current.status).toBe('draft'));
    await act(() => result.current.start());
    const speakers = new Set<string>();
    await waitFor(
      () => {
        if (result.current.speaker?.text) speakers.add(result.current.speaker.agentName);
        expect(result.current.closed).toBe(true);
      },
      { timeout: 280_000, interval: 20 },
    );
    expect(result.current.status).toBe('finished');
    expect(result.current.speaker).toBeNull();
    expect(speakers.size).toBeGreaterThanOrEqual(1);
    const transcript = await client.discussions.transcript(room.id);
    expect(result.current.turns.map((t) => ({ turn: t.turn, agentName: t.agentName, text: t.text, status: t.status }))).toEqual(
      transcript.turns.map((t) => ({ turn: t.turn, agentName: t.agentName, text: t.text, status: t.status })),
    );
    expect(result.current.timeline.filter((e) => e.kind === 'turn')).toHaveLength(2);
  });
});

describe('cleanup on unmount', () => {
  for (const transport of ['sse', 'socket.io'] as const) {
    it(`leaves no connection behind (${transport})`, async () => {
      const job = await client.jobs.submit('system.ping', { holdMs: 10_000 });
      const key = stack.api.keys.jobStream(job.id);
      const { result, unmount } = renderHook(() => useJobStream(job.id, { transport }), { wrapper });
      await waitFor(() => expect(result.current.status).toBe('streaming'), { timeout: 30_000 });
      expect(stack.api.hub.subscriberCount(key)).toBe(1);
      unmount();
      await waitFor(() => expect(stack.api.hub.subscriberCount(key)).toBe(0));
      await client.jobs.cancel(job.id);
    });
  }
});
