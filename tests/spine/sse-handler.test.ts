/**
 * The SSE mechanics (api/realtime/sse.ts eventStreamHandler) on a bare
 * Express app: what a stream holds (its subscription, its credential
 * recheck) is released when it ends, whether it ends with its last event,
 * on a revocation, or because the client left.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { permissionsOf, type Actor } from '../../api/auth/permissions.ts';
import { eventStreamHandler } from '../../api/realtime/sse.ts';
import { readSse } from '../harness.ts';
import { until } from '../support/until.ts';

type E = { event: string; data: { seq: number } & Record<string, unknown> };
const actor: Actor = {
  kind: 'user',
  userId: randomUUID(),
  username: 'u',
  role: 'member',
  permissions: new Set(permissionsOf('member')),
  sessionId: randomUUID(),
};
const servers: { close(): void }[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

function serve(opts: { watch: (fn: (e: E) => void) => Promise<() => void>; valid?: () => boolean }) {
  const counts = { checks: 0, open: 0, unsubscribed: 0 };
  const app = express();
  app.get(
    '/events/:id',
    eventStreamHandler<E>(
      { onOpen: () => counts.open++, onClose: () => counts.open--, stillValid: async () => (counts.checks++, opts.valid?.() ?? true), revalidateMs: 50 },
      async () => actor,
      {
        permission: 'jobs:read',
        watch: async (_a, _id, _after, fn) => {
          const stop = await opts.watch(fn);
          return () => {
            counts.unsubscribed++;
            stop();
          };
        },
        isLast: (e) => e.event === 'finished',
      },
    ),
  );
  const server = app.listen(0);
  servers.push(server);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events/${randomUUID()}`;
  return { url, counts, server };
}

/** Resolves once `check` holds, polling; fails after a generous deadline. */
/**
 * Waits for `n` recheck periods, counted on a reference stream (its own server, same
 * `revalidateMs`) rather than on the clock: a recheck timer left running by another stream,
 * started earlier with the same period, would have fired in the meantime too.
 */
async function recheckPeriods(n: number): Promise<void> {
  const ref = serve({ watch: async () => () => {} });
  const controller = new AbortController();
  const res = await fetch(ref.url, { signal: controller.signal });
  expect(res.status).toBe(200);
  await until(`${n} rechecks of the reference stream`, () => ref.counts.checks >= n);
  controller.abort();
}

describe('eventStreamHandler', () => {
  it('ends at a last event delivered at subscribe time and keeps no recheck running', async () => {
    const { url, counts } = serve({ watch: async (fn) => (fn({ event: 'finished', data: { seq: 1 } }), () => {}) });
    const r = await readSse(url, {}, { timeoutMs: 5000 });
    expect(r.events.map((e) => e.event)).toEqual(['finished']);
    const after = counts.checks;
    await recheckPeriods(3);
    expect(counts.checks).toBe(after);
    expect(counts).toMatchObject({ open: 0, unsubscribed: 1 });
  });

  it('ends with auth_error when the credential stops being valid, and stops rechecking', async () => {
    let valid = true;
    const { url, counts } = serve({ watch: async () => () => {}, valid: () => valid });
    const reading = readSse(url, {}, { timeoutMs: 5000 });
    await until('the open stream to recheck its credential', () => counts.checks >= 1);
    valid = false;
    const r = await reading;
    expect(r.events.at(-1)).toMatchObject({ event: 'auth_error', data: { code: 'SESSION_REVOKED' } });
    const after = counts.checks;
    await recheckPeriods(3);
    expect(counts.checks).toBe(after);
    expect(counts).toMatchObject({ open: 0, unsubscribed: 1 });
  });

  it('releases everything when the client leaves, even while the subscription is still being set up', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let settingUp = false;
    const { url, counts, server } = serve({ watch: async () => ((settingUp = true), await gate, () => {}) });
    let clientGone = false;
    server.on('connection', (socket) => socket.on('close', () => (clientGone = true)));
    const controller = new AbortController();
    const leaving = fetch(url, { signal: controller.signal }).catch(() => undefined);
    await until('the subscription to be in setup', () => settingUp);
    controller.abort();
    await leaving;
    await until('the server to see the client leave', () => clientGone);
    release();
    await until('the subscription to be released', () => counts.unsubscribed === 1);
    await recheckPeriods(3);
    expect(counts).toMatchObject({ checks: 0, open: 0, unsubscribed: 1 });
  });
});
