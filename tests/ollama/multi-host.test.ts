/**
 * Model management and model checks across two real Ollama hosts: the
 * managed one and a second one started here from the same build, with its
 * own model folder (tests/support/second-ollama.ts). Both serve the chat
 * model; the embedding model is only on the first; a model made here is
 * only on the second. A third stack adds a host that is down.
 *
 * Issue 14: management used to reach only the first host of OLLAMA_HOSTS.
 * Issue 16: a model installed only on a second host got past the members'
 * allow-list.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { deadUrl, startSecondOllama, type SecondOllama } from '../support/second-ollama.ts';

const h1 = process.env.OLLAMA_HOST!.includes('://') ? process.env.OLLAMA_HOST!.replace(/\/+$/, '') : `http://${process.env.OLLAMA_HOST}`;
const chatModel = process.env.PARLEY_CHAT_MODEL ?? 'smollm2:135m';
const id = randomUUID().slice(0, 8);
/** Only on the second host: the chat weights with a system prompt of its own. */
const onlyH2 = `parley-h2-${id}:only`;
const made = `parley-mh-${id}:made`;
const fromH2 = `parley-mh-${id}:from-h2`;
const copied = `parley-mh-${id}:copied`;
const viaDead = `parley-mh-${id}:dead`;
const enc = encodeURIComponent;

let h2: SecondOllama;
let dead: string;
let stack: Stack;
let degraded: Stack;
let admin: TestUser;
let operator: TestUser;
let member: TestUser;

async function ollamaDelete(host: string, name: string): Promise<void> {
  await fetch(`${host}/api/delete`, { method: 'DELETE', body: JSON.stringify({ model: name }) }).catch(() => {});
}

async function tags(host: string): Promise<string[]> {
  const r = (await (await fetch(`${host}/api/tags`)).json()) as { models: { name: string }[] };
  return r.models.map((m) => m.name);
}

beforeAll(async () => {
  h2 = await startSecondOllama({ chatModel });
  await h2.create({ model: onlyH2, from: chatModel, system: 'You only live on the second host.' });
  dead = await deadUrl();
  stack = await startStack({ workers: ['models'], env: { OLLAMA_HOSTS: `${h1},${h2.url}` } });
  degraded = await startStack({ workers: ['models'], env: { OLLAMA_HOSTS: `${h1},${h2.url},${dead}`, OLLAMA_CONNECT_TIMEOUT_MS: '500' } });
  [admin, operator, member] = await Promise.all([stack.user('admin'), stack.user('operator'), stack.user('member')]);
}, 180_000);

afterAll(async () => {
  for (const name of [made, fromH2, copied, viaDead]) await ollamaDelete(h1, name);
  await stack?.stop();
  await degraded?.stop();
  await h2?.stop();
});

describe('reading every host', () => {
  it('lists each model once with the hosts that have it, and every host as up', async () => {
    const r = await stack.request('GET', '/v1/models', { user: member });
    expect(r.status).toBe(200);
    expect(r.json.hosts).toEqual([
      { host: h1, up: true, error: null },
      { host: h2.url, up: true, error: null },
    ]);
    const byName = new Map<string, any>(r.json.items.map((m: any) => [m.name, m]));
    expect(byName.get(chatModel).hosts.map((h: any) => h.host)).toEqual([h1, h2.url]);
    expect(byName.get('all-minilm:latest').hosts.map((h: any) => h.host)).toEqual([h1]);
    expect(byName.get(onlyH2)).toMatchObject({ family: 'llama', hosts: [{ host: h2.url, loaded: false }] });
    expect(r.json.items.filter((m: any) => m.name === chatModel)).toHaveLength(1);
  });

  it('shows a model installed only on the second host, by any of its names', async () => {
    for (const name of [onlyH2, `library/${onlyH2}`, onlyH2.toUpperCase()]) {
      const r = await stack.request('GET', `/v1/models/${enc(name)}`, { user: member });
      expect(r.status, name).toBe(200);
      expect(r.json).toMatchObject({ name: onlyH2, system: 'You only live on the second host.', hosts: [{ host: h2.url }] });
    }
  });
});

describe('changing every host', () => {
  it('creates on every host that has the source, and says which hosts it skipped', async () => {
    const both = await stack.request('POST', '/v1/models', { user: operator, body: { name: made, from: chatModel, system: 'Made on both.' } });
    expect(both.status, both.text).toBe(201);
    expect(both.json.results).toEqual([
      { host: h1, outcome: 'applied', detail: null },
      { host: h2.url, outcome: 'applied', detail: null },
    ]);
    expect(both.json.complete).toBe(true);
    expect(both.json.hosts.map((h: any) => h.host)).toEqual([h1, h2.url]);
    expect(await tags(h1)).toContain(made);
    expect(await tags(h2.url)).toContain(made);

    const one = await stack.request('POST', '/v1/models', { user: operator, body: { name: fromH2, from: onlyH2 } });
    expect(one.status, one.text).toBe(201);
    expect(one.json.results).toEqual([
      { host: h1, outcome: 'skipped', detail: expect.stringContaining('not installed on this host') },
      { host: h2.url, outcome: 'applied', detail: null },
    ]);
    expect(await tags(h1)).not.toContain(fromH2);

    // A name that exists on either host is refused: Ollama would overwrite it.
    const clash = await stack.request('POST', '/v1/models', { user: operator, body: { name: onlyH2, from: chatModel } });
    expect(clash.status).toBe(409);
  });

  it('copies and deletes on every host that has the model', async () => {
    const c = await stack.request('POST', `/v1/models/${enc(made)}/copy`, { user: admin, body: { destination: copied } });
    expect(c.status, c.text).toBe(201);
    expect(c.json.results.map((r: any) => r.outcome)).toEqual(['applied', 'applied']);
    const d = await stack.request('DELETE', `/v1/models/${enc(copied)}`, { user: admin });
    expect(d.status).toBe(200);
    expect(d.json).toEqual({
      name: copied,
      results: [
        { host: h1, outcome: 'applied', detail: null },
        { host: h2.url, outcome: 'applied', detail: null },
      ],
      complete: true,
    });
    expect(await tags(h1)).not.toContain(copied);
    expect(await tags(h2.url)).not.toContain(copied);
    // Deleting what only the second host has skips the first.
    const d2 = await stack.request('DELETE', `/v1/models/${enc(fromH2)}`, { user: admin });
    expect(d2.json.results).toEqual([
      { host: h1, outcome: 'skipped', detail: 'not installed on this host' },
      { host: h2.url, outcome: 'applied', detail: null },
    ]);
  });

  it('loads where the model is installed, lists what runs where, and unloads it', async () => {
    const load = await stack.request('POST', `/v1/models/${enc(onlyH2)}/load`, { user: operator, body: { keep_alive: '5m' } });
    expect(load.status, load.text).toBe(200);
    expect(load.json).toMatchObject({ name: onlyH2, loaded: true, hosts: [{ host: h2.url, loaded: true }], complete: true });
    expect(load.json.results).toEqual([
      { host: h1, outcome: 'skipped', detail: 'not installed on this host' },
      { host: h2.url, outcome: 'applied', detail: null },
    ]);

    const running = await stack.request('GET', '/v1/models/running', { user: member });
    expect(running.json.hosts.map((h: any) => h.up)).toEqual([true, true]);
    expect(running.json.items).toContainEqual(expect.objectContaining({ name: onlyH2, host: h2.url }));
    expect(running.json.items.filter((m: any) => m.name === onlyH2 && m.host === h1)).toEqual([]);

    const unload = await stack.request('POST', `/v1/models/${enc(onlyH2)}/unload`, { user: operator });
    expect(unload.status).toBe(200);
    expect(unload.json).toMatchObject({ loaded: false, hosts: [{ host: h2.url, loaded: false }] });
  });

  it('pulls into every host and names each host in the outcome', async () => {
    const r = await stack.request('POST', '/v1/models/pull', { user: operator, body: { model: `parley-mh-${id}-absent` } });
    expect(r.status).toBe(202);
    const job = await stack.waitForJob(r.json.id, operator, 60_000);
    expect(job.state).toBe('failed');
    expect(job.error.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(job.error.message).toContain(`${h1}: registry unreachable: `);
    expect(job.error.message).toContain(`${h2.url}: registry unreachable: `);
  });
});

describe('model checks across hosts', () => {
  // Issue 16: admission asked only the first host, so a model there was "not installed" and let through.
  it('refuses members a model installed only on the second host, by any alias', async () => {
    for (const model of [onlyH2, `library/${onlyH2}`, `registry.ollama.ai/library/${onlyH2}`]) {
      const r = await stack.request('POST', '/v1/jobs', {
        user: member,
        body: { kind: 'llm.chat', input: { model, messages: [{ role: 'user', content: 'hi' }] } },
      });
      expect(r.status, model).toBe(422);
      expect(r.json).toMatchObject({ code: 'LIMIT_EXCEEDED', cap: 'models' });
    }
    const agent = await stack.request('POST', '/v1/agents', { user: member, body: { name: 'Stray', persona: 'x', model: onlyH2 } });
    expect(agent.status).toBe(422);
  });

  it('accepts a model installed only on the second host for roles that may use every model', async () => {
    const r = await stack.request('POST', '/v1/jobs', {
      user: operator,
      body: { kind: 'llm.chat', input: { model: onlyH2, messages: [{ role: 'user', content: 'hi' }], options: { num_predict: 1 } } },
    });
    expect(r.status, r.text).toBe(202);
    // No llm worker in this stack: cancel it so no other suite's sweeper adopts it.
    expect((await stack.request('DELETE', `/v1/jobs/${r.json.id}`, { user: operator })).json.state).toBe('cancelled');
  });
});

describe('a host that is down', () => {
  it('is listed as down while the others answer', async () => {
    const r = await degraded.request('GET', '/v1/models', { user: await degraded.user('member') });
    expect(r.status).toBe(200);
    expect(r.json.hosts.map((h: any) => [h.host, h.up])).toEqual([
      [h1, true],
      [h2.url, true],
      [dead, false],
    ]);
    expect(r.json.hosts[2].error).toBeTruthy();
    expect(r.json.items.map((m: any) => m.name)).toContain(onlyH2);
    const ps = await degraded.request('GET', '/v1/models/running', { user: await degraded.user('member') });
    expect(ps.json.hosts[2]).toMatchObject({ host: dead, up: false });
  });

  it('is reported as unreachable by a change, which is then not complete', async () => {
    const op = await degraded.user('operator');
    const made = await degraded.request('POST', '/v1/models', { user: op, body: { name: viaDead, from: chatModel } });
    expect(made.status, made.text).toBe(201);
    expect(made.json.results.map((r: any) => [r.host, r.outcome])).toEqual([
      [h1, 'applied'],
      [h2.url, 'applied'],
      [dead, 'unreachable'],
    ]);
    expect(made.json.complete).toBe(false);
    const del = await degraded.request('DELETE', `/v1/models/${enc(viaDead)}`, { user: await degraded.user('admin') });
    expect(del.status).toBe(200);
    expect(del.json.results.map((r: any) => r.outcome)).toEqual(['applied', 'applied', 'unreachable']);
    expect(del.json.complete).toBe(false);
  });

  it('is named in a pull that fails, with its own outcome', async () => {
    const op = await degraded.user('operator');
    const r = await degraded.request('POST', '/v1/models/pull', { user: op, body: { model: `parley-mh-${id}-absent-2` } });
    const job = await degraded.waitForJob(r.json.id, op, 60_000);
    expect(job.state).toBe('failed');
    expect(job.error.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(job.error.message).toContain(`${dead}: Ollama host unreachable: `);
    expect(job.error.message).toContain(`${h2.url}: registry unreachable: `);
  });
});
