/**
 * Helpers for the discussion suites: agents and rooms through the public
 * API, waiting on a room's state, and reading its live events over SSE or
 * Socket.IO. Small num_predict values keep the real model's turns short.
 */
import { io as connect, type Socket } from 'socket.io-client';
import { readSse, type Stack, type TestUser } from '../harness.ts';

export const personas = [
  { name: 'Ada', persona: 'You are Ada, a cheerful optimist who loves cats.' },
  { name: 'Bo', persona: 'You are Bo, a grumpy skeptic who prefers dogs.' },
  { name: 'Cy', persona: 'You are Cy, a calm mediator who likes both.' },
];

export async function makeAgents(
  stack: Stack,
  user: TestUser,
  n: number,
  params: Record<string, unknown> = { num_predict: 24, temperature: 0.7 },
): Promise<any[]> {
  const out = [];
  for (const p of personas.slice(0, n)) {
    const r = await stack.request('POST', '/v1/agents', { user, body: { ...p, params } });
    if (r.status !== 201) throw new Error(`agent: ${r.status} ${r.text}`);
    out.push(r.json);
  }
  return out;
}

export async function makeRoom(stack: Stack, user: TestUser, body: Record<string, unknown>): Promise<any> {
  const r = await stack.request('POST', '/v1/discussions', { user, body: { topic: 'Cats or dogs?', ...body } });
  if (r.status !== 201) throw new Error(`discussion: ${r.status} ${r.text}`);
  return r.json;
}

export async function act(stack: Stack, user: TestUser, id: string, action: string, expected = 200): Promise<any> {
  const r = await stack.request('POST', `/v1/discussions/${id}/${action}`, { user });
  if (r.status !== expected) throw new Error(`${action}: ${r.status} ${r.text}`);
  return r.json;
}

export async function waitForRoom(stack: Stack, user: TestUser, id: string, pred: (d: any) => boolean, timeoutMs = 240_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await stack.request('GET', `/v1/discussions/${id}`, { user });
    if (r.status === 200 && pred(r.json)) return r.json;
    if (Date.now() > deadline) throw new Error(`room ${id} did not reach the state in ${timeoutMs} ms: ${r.text}`);
    await new Promise((res) => setTimeout(res, 150));
  }
}

export const closed = (d: any) => d.status === 'finished' || d.status === 'stopped';

export async function transcript(stack: Stack, user: TestUser, id: string, prompts = false): Promise<any> {
  const r = await stack.request('GET', `/v1/discussions/${id}/transcript${prompts ? '?prompts=true' : ''}`, { user });
  if (r.status !== 200) throw new Error(`transcript: ${r.status} ${r.text}`);
  return r.json;
}

export function roomEvents(stack: Stack, user: TestUser, id: string, opts: { lastEventId?: number; stopAfter?: (e: any) => boolean; timeoutMs?: number } = {}) {
  return readSse(
    `${stack.base}/v1/discussions/${id}/events`,
    { ...user.auth, ...(opts.lastEventId !== undefined ? { 'last-event-id': String(opts.lastEventId) } : {}) },
    {
      timeoutMs: opts.timeoutMs ?? 240_000,
      stopAfter: (e) => (e.event === 'status' && (e.data.status === 'finished' || e.data.status === 'stopped')) || (opts.stopAfter?.(e) ?? false),
    },
  );
}

/** Rebuilds each turn's text from room events, honouring restarts (a repeated turn_started drops what came before). */
export function turnsFromEvents(events: { event: string; data: any }[]): Map<number, { agentId: string; text: string; status?: string }> {
  const turns = new Map<number, { agentId: string; text: string; status?: string }>();
  for (const e of events) {
    if (e.event === 'turn_started') turns.set(e.data.turn, { agentId: e.data.agentId, text: '' });
    if (e.event === 'tokens') turns.get(e.data.turn)!.text += e.data.text;
    if (e.event === 'turn_finished') turns.get(e.data.turn)!.status = e.data.status;
  }
  return turns;
}

export function socketFor(stack: Stack, user: TestUser): Socket {
  return connect(stack.base, { path: '/socket.io', auth: { token: user.token }, transports: ['websocket'], reconnection: false });
}

export function subscribe(socket: Socket, room: string, lastSeq = 0): Promise<{ ok: boolean; error?: { code: string } }> {
  return new Promise((resolve) => socket.emit('subscribe', { room, lastSeq }, resolve));
}
