/**
 * Model status monitoring through the API: the poller sees the real Ollama's
 * models (installed from /api/tags, loaded from /api/ps), `/v1/models/status`
 * and `/readyz` report them, Prometheus has the gauges, and operators hear
 * over Socket.IO when a host (a stub) goes down and comes back.
 */
import { io as connect, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { startOllamaStub, type OllamaStub } from '../support/ollama-stub.ts';

const real = process.env.OLLAMA_HOST!.replace(/\/+$/, '');
const chatModel = process.env.PARLEY_CHAT_MODEL!;
const embedModel = process.env.PARLEY_EMBED_MODEL!;
const tagged = (m: string) => (m.includes(':') ? m : `${m}:latest`);

let stack: Stack;
let stub: OllamaStub;
let member: TestUser;
let operator: TestUser;

beforeAll(async () => {
  stub = await startOllamaStub({
    models: { installed: [{ name: 'stub-only:1b', digest: 'b'.repeat(64) }], loaded: [{ name: 'stub-only:1b', size: 1234, size_vram: 1000 }] },
  });
  // The chat model in memory on the real host, so "loaded" has something to show.
  await fetch(`${real}/api/generate`, { method: 'POST', body: JSON.stringify({ model: chatModel, keep_alive: '30m' }) }).then((r) => r.text());
  stack = await startStack({ workers: false, env: { OLLAMA_HOSTS: `${real},${stub.url}`, OLLAMA_STATUS_INTERVAL_MS: '150', OLLAMA_STATUS_TIMEOUT_MS: '500' } });
  member = await stack.user('member');
  operator = await stack.user('operator');
  await stack.api.ollama.status.ready();
});
afterAll(async () => {
  await stack?.stop();
  await stub?.close();
});

describe('model status', () => {
  it('GET /v1/models/status lists both real models as installed, with loaded state from /api/ps', async () => {
    await stack.api.ollama.status.refresh();
    const ps = (await (await fetch(`${real}/api/ps`)).json()) as { models: { name: string; size: number }[] };
    const r = await stack.request('GET', '/v1/models/status', { user: member });
    expect(r.status).toBe(200);
    const byName = new Map<string, any>(r.json.models.map((m: any) => [m.model, m]));
    for (const name of [tagged(chatModel), tagged(embedModel)]) {
      const m = byName.get(name);
      expect(m, name).toBeDefined();
      expect(m.installed).toBe(true);
      const onReal = m.hosts.find((h: any) => h.host === real);
      expect(onReal).toMatchObject({ installed: true, digest: expect.stringMatching(/^[0-9a-f]{64}$/) });
      expect(onReal.loaded).toBe(ps.models.some((p) => p.name === name));
      expect(m.hosts.find((h: any) => h.host === stub.url)).toMatchObject({ installed: false, loaded: false });
    }
    const chat = byName.get(tagged(chatModel)).hosts.find((h: any) => h.host === real);
    expect(chat.loaded).toBe(true);
    expect(chat.memoryBytes).toBeGreaterThan(0);
    expect(Date.parse(chat.expiresAt)).toBeGreaterThan(Date.now());
    expect(byName.get('stub-only:1b')).toMatchObject({
      installed: true,
      loaded: true,
      hosts: expect.arrayContaining([expect.objectContaining({ host: stub.url, memoryBytes: 1234, vramBytes: 1000 })]),
    });
    expect(r.json.hosts).toEqual(
      expect.arrayContaining([expect.objectContaining({ host: real, up: true, version: '0.11.4' }), expect.objectContaining({ host: stub.url, up: true })]),
    );
  });

  it('needs credentials', async () => {
    const r = await stack.request('GET', '/v1/models/status');
    expect(r.status).toBe(401);
  });

  it('/readyz carries per-model availability for operators', async () => {
    const r = await stack.request('GET', '/readyz', { user: operator });
    expect(r.json.checks.ollama.ok).toBe(true);
    expect(r.json.models).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ model: tagged(chatModel), installed: true, loaded: true, loadedOn: [real] }),
        expect.objectContaining({ model: tagged(embedModel), installed: true }),
      ]),
    );
    expect(r.json.ollamaHosts).toEqual(
      expect.arrayContaining([
        { host: real, up: true },
        { host: stub.url, up: true },
      ]),
    );
  });

  it('exports Ollama up, loaded models and their memory to Prometheus', async () => {
    await stack.api.ollama.status.refresh();
    const r = await stack.request('GET', '/metrics', { user: operator });
    expect(r.text).toContain(`parley_ollama_up{host="${real}"} 1`);
    expect(r.text).toContain(`parley_ollama_up{host="${stub.url}"} 1`);
    expect(r.text).toMatch(new RegExp(`parley_ollama_loaded_models\\{host="${real}"\\} [1-9]`));
    expect(r.text).toContain(`parley_ollama_model_memory_bytes{host="${stub.url}",model="stub-only:1b",kind="vram"} 1000`);
  });
});

describe('operators hear about host transitions', () => {
  it('emits ollama_status to operators when a host goes down and comes back, and not to members', async () => {
    const open = (u: TestUser) =>
      new Promise<Socket>((resolve, reject) => {
        const s = connect(stack.base, { path: '/socket.io', auth: { token: u.token }, transports: ['websocket'], reconnection: false });
        s.on('connect', () => resolve(s));
        s.on('connect_error', reject);
      });
    const [op, mem] = await Promise.all([open(operator), open(member)]);
    const seen: { host: string; up: boolean; at: string }[] = [];
    const memberSeen: unknown[] = [];
    op.on('ollama_status', (e) => seen.push(e));
    mem.on('ollama_status', (e) => memberSeen.push(e));
    const until = async (pred: () => boolean, ms = 5_000) => {
      const deadline = Date.now() + ms;
      while (!pred()) {
        if (Date.now() > deadline) throw new Error(`timed out; seen ${JSON.stringify(seen)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      await stub.down();
      await until(() => seen.length >= 1);
      expect(seen[0]).toMatchObject({ host: stub.url, up: false });
      expect(stack.api.ollama.status.isUp(stub.url)).toBe(false);
      await stub.up();
      await until(() => seen.length >= 2);
      expect(seen[1]).toMatchObject({ host: stub.url, up: true });
      expect(Date.parse(seen[1]!.at)).toBeGreaterThan(Date.parse(seen[0]!.at));
      expect(memberSeen).toEqual([]);
      expect(seen.every((e) => e.host === stub.url)).toBe(true);
    } finally {
      op.close();
      mem.close();
    }
  });
});
