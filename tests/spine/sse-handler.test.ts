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

type E = { event: string; data: { seq: number } & Record<string, unknown> };
const actor: Actor = { kind: 'user', userId: randomUUID(), username: 'u', role: 'member', permissions: new Set(permissionsOf('member')), sessionId: randomUUID() };
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
  return { url, counts };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('eventStreamHandler', () => {
  it('ends at a last event delivered at subscribe time and keeps no recheck running', async () => {
    const { url, counts } = serve({ watch: async (fn) => (fn({ event: 'finished', data: { seq: 1 } }), () => {}) });
    const r = await readSse(url, {}, { timeoutMs: 5000 });
    expect(r.events.map((e) => e.event)).toEqual(['finished']);
    const after = counts.checks;
    await sleep(300);
    expect(counts.checks).toBe(after);
    expect(counts).toMatchObject({ open: 0, unsubscribed: 1 });
  });

  it('ends with auth_error when the credential stops being valid, and stops rechecking', async () => {
    let valid = true;
    const { url, counts } = serve({ watch: async () => () => {}, valid: () => valid });
    const reading = readSse(url, {}, { timeoutMs: 5000 });
    await sleep(150);
    valid = false;
    const r = await reading;
    expect(r.events.at(-1)).toMatchObject({ event: 'auth_error', data: { code: 'SESSION_REVOKED' } });
    const after = counts.checks;
    await sleep(300);
    expect(counts.checks).toBe(after);
    expect(counts).toMatchObject({ open: 0, unsubscribed: 1 });
  });

  it('releases everything when the client leaves, even while the subscription is still being set up', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { url, counts } = serve({ watch: async () => (await gate, () => {}) });
    const controller = new AbortController();
    const leaving = fetch(url, { signal: controller.signal }).catch(() => undefined);
    await sleep(100);
    controller.abort();
    await leaving;
    await sleep(50);
    release();
    await sleep(300);
    expect(counts).toMatchObject({ checks: 0, open: 0, unsubscribed: 1 });
  });
});
