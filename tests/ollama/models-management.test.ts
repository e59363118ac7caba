/**
 * Model management against the real Ollama: list, show, create, copy,
 * delete, load/unload and ps, pulls with no registry reachable, RBAC and
 * audit rows. Models made here have a unique `parley-test-<id>` name and are
 * deleted at the end whatever happens.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';

const host = process.env.OLLAMA_HOST!.includes('://') ? process.env.OLLAMA_HOST! : `http://${process.env.OLLAMA_HOST}`;
const chatModel = process.env.PARLEY_CHAT_MODEL ?? 'smollm2:135m';
const id = randomUUID().slice(0, 8);
const alias = `parley-test-${id}:alias`;
const copy = `parley-test-${id}:copy`;
const small = `parley-test-${id}:q8`;
const enc = encodeURIComponent;

let stack: Stack;
let idle: Stack;
let admin: TestUser;
let operator: TestUser;
let member: TestUser;

async function ollamaDelete(name: string): Promise<void> {
  await fetch(`${host}/api/delete`, { method: 'DELETE', body: JSON.stringify({ model: name }) }).catch(() => {});
}

async function auditRows(action: string, target: string): Promise<{ outcome: string; actor_id: string }[]> {
  return stack.api.db('audit_events').where({ action, target_id: target }).orderBy('id');
}

beforeAll(async () => {
  // Only the models queue: pulls run, nothing else is needed.
  stack = await startStack({ workers: ['models'] });
  idle = await startStack({ workers: false });
  [admin, operator, member] = await Promise.all([stack.user('admin'), stack.user('operator'), stack.user('member')]);
});

afterAll(async () => {
  for (const name of [alias, copy, `${copy}-race`, small, `parley-test-${id}:badtemplate`]) await ollamaDelete(name);
  await stack?.stop();
  await idle?.stop();
});

describe('reading models', () => {
  it('lists installed models with family, size, quantization, context length, capabilities and load state', async () => {
    const r = await stack.request('GET', '/v1/models', { user: member });
    expect(r.status).toBe(200);
    const chat = r.json.items.find((m: any) => m.name === chatModel);
    expect(chat).toMatchObject({ family: 'llama', quantization: 'Q4_1', parameterSize: '134.52M', contextLength: 8192, format: 'gguf' });
    expect(chat.capabilities).toContain('completion');
    expect(chat.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(chat.sizeBytes).toBeGreaterThan(50_000_000);
    expect(typeof chat.loaded).toBe('boolean');
    const embed = r.json.items.find((m: any) => m.name === 'all-minilm:latest');
    expect(embed.capabilities).toEqual(['embedding']);
    expect(embed.family).toBe('bert');
    expect(embed.contextLength).toBe(512);
    // One host here: every model is on it, and the host answered.
    expect(chat.hosts).toEqual([{ host, digest: chat.digest, loaded: chat.loaded }]);
    expect(r.json.hosts).toEqual([{ host, up: true, error: null }]);
  });

  it('shows one model by its URL-encoded name, with template and default parameters', async () => {
    const r = await stack.request('GET', `/v1/models/${enc(chatModel)}`, { user: member });
    expect(r.status).toBe(200);
    expect(r.json.name).toBe(chatModel);
    expect(r.json.architecture).toBe('llama');
    expect(r.json.parameterCount).toBe(134_515_008);
    expect(r.json.template).toContain('<|im_start|>');
    expect(r.json.parameters).toMatchObject({ num_ctx: 2048, stop: ['<|im_start|>', '<|im_end|>'] });
  });

  it('answers 404 NOT_FOUND for a name with a slash that is not installed (decoded, not a missing route)', async () => {
    const r = await stack.request('GET', `/v1/models/${enc('library/nothing-here:1')}`, { user: member });
    expect(r.status).toBe(404);
    expect(r.json.code).toBe('NOT_FOUND');
  });
});

describe('changing models', () => {
  it('creates a model from an installed one; refuses an existing name and a base that is not installed', async () => {
    const body = { name: alias, from: chatModel, system: 'You answer in one short sentence.', parameters: { temperature: 0.1, num_predict: 20 } };
    const r = await stack.request('POST', '/v1/models', { user: operator, body });
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({
      name: alias,
      system: body.system,
      parent: chatModel,
      family: 'llama',
      results: [{ host, outcome: 'applied', detail: null }],
      complete: true,
    });
    expect(r.json.parameters).toMatchObject({ temperature: 0.1, num_predict: 20, num_ctx: 2048 });
    expect(r.headers.get('location')).toBe(`/v1/models/${enc(alias)}`);

    const list = await stack.request('GET', '/v1/models', { user: member });
    expect(list.json.items.map((m: any) => m.name)).toContain(alias);

    const again = await stack.request('POST', '/v1/models', { user: operator, body });
    expect(again.status).toBe(409);
    expect(again.json.code).toBe('INVALID_STATE');

    const noBase = await stack.request('POST', '/v1/models', { user: operator, body: { name: `parley-test-${id}:nobase`, from: `parley-test-${id}:missing` } });
    expect(noBase.status).toBe(400);
    expect(noBase.json.errors[0].path).toBe('from');

    const badParams = await stack.request('POST', '/v1/models', {
      user: operator,
      body: { ...body, name: `parley-test-${id}:bad`, parameters: { repeat_penalty: 0 } },
    });
    expect(badParams.status).toBe(400);

    expect(await auditRows('model.create', alias)).toEqual([
      expect.objectContaining({ outcome: 'success', actor_id: operator.id }),
      expect.objectContaining({ outcome: 'failure', actor_id: operator.id }),
    ]);
  });

  it("answers 400 with Ollama's reason when every host refuses a create, and creates nothing", async () => {
    const broken = `parley-test-${id}:badtemplate`;
    // A template Ollama cannot parse: the request is valid here, and only Ollama can tell.
    const r = await stack.request('POST', '/v1/models', { user: operator, body: { name: broken, from: chatModel, template: '{{ .Prompt' } });
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toContain('application/problem+json');
    expect(r.json.code).toBe('VALIDATION_FAILED');
    expect(r.json.detail).toMatch(new RegExp(`^create ${broken}: Ollama refused the request: .*unclosed action`));
    expect((await stack.request('GET', `/v1/models/${enc(broken)}`, { user: member })).status).toBe(404);
    expect(await auditRows('model.create', broken)).toEqual([expect.objectContaining({ outcome: 'failure', actor_id: operator.id })]);
  });

  it('refuses create to members (models:manage)', async () => {
    const r = await stack.request('POST', '/v1/models', { user: member, body: { name: `parley-test-${id}:m`, from: chatModel } });
    expect(r.status).toBe(403);
  });

  it('lets only admins copy and delete, and audits both', async () => {
    const opCopy = await stack.request('POST', `/v1/models/${enc(alias)}/copy`, { user: operator, body: { destination: copy } });
    expect(opCopy.status).toBe(403);
    expect(opCopy.json.code).toBe('FORBIDDEN');
    const opDelete = await stack.request('DELETE', `/v1/models/${enc(alias)}`, { user: operator });
    expect(opDelete.status).toBe(403);

    const c = await stack.request('POST', `/v1/models/${enc(alias)}/copy`, { user: admin, body: { destination: copy } });
    expect(c.status).toBe(201);
    expect(c.json.name).toBe(copy);
    expect(c.json.system).toBe('You answer in one short sentence.');
    const clash = await stack.request('POST', `/v1/models/${enc(alias)}/copy`, { user: admin, body: { destination: copy } });
    expect(clash.status).toBe(409);

    const d = await stack.request('DELETE', `/v1/models/${enc(copy)}`, { user: admin });
    expect(d.status).toBe(200);
    expect(d.json).toEqual({ name: copy, results: [{ host, outcome: 'applied', detail: null }], complete: true });
    expect((await stack.request('GET', `/v1/models/${enc(copy)}`, { user: admin })).status).toBe(404);
    expect((await stack.request('DELETE', `/v1/models/${enc(copy)}`, { user: admin })).status).toBe(404);

    const configured = await stack.request('DELETE', `/v1/models/${enc(chatModel)}`, { user: admin });
    expect(configured.status).toBe(409);

    expect(await auditRows('model.copy', alias)).toEqual([
      expect.objectContaining({ outcome: 'success', actor_id: admin.id }),
      expect.objectContaining({ outcome: 'failure', actor_id: admin.id }),
    ]);
    expect((await auditRows('model.delete', copy)).map((r) => r.outcome)).toEqual(['success', 'failure']);
    expect(await auditRows('model.delete', chatModel)).toEqual(expect.arrayContaining([expect.objectContaining({ outcome: 'failure', actor_id: admin.id })]));
  });

  it('creates one copy when copies to one new name are asked at once; the others answer 409', async () => {
    // Each copy checked that the destination did not exist, then copied: three or four of four answered 201.
    const destination = `${copy}-race`;
    for (let round = 0; round < 5; round++) {
      const answers = await Promise.all([0, 1, 2, 3].map(() => stack.request('POST', `/v1/models/${enc(alias)}/copy`, { user: admin, body: { destination } })));
      expect(answers.map((a) => a.status).sort()).toEqual([201, 409, 409, 409]);
      expect((await stack.request('DELETE', `/v1/models/${enc(destination)}`, { user: admin })).status).toBe(200);
    }
  });

  it('loads a model with keep_alive, lists it as running with memory and expiry, and unloads it', async () => {
    // Its own weights file (quantized from the F16 embedding model), so loading and unloading it
    // cannot evict the runner other suites are using: Ollama keys runners by weights file.
    const made = await stack.request('POST', '/v1/models', { user: operator, body: { name: small, from: 'all-minilm', quantize: 'q8_0' } });
    expect(made.status).toBe(201);
    // Quantizing needs F16 or F32 weights: from the quantized one just made it is the client's mistake, a 400 (Ollama's own answer is a 500).
    const again = await stack.request('POST', '/v1/models', { user: operator, body: { name: `${small}-twice`, from: small, quantize: 'q4_K_M' } });
    expect(again.status, again.text).toBe(400);
    expect(again.json.errors).toEqual([expect.objectContaining({ path: 'quantize' })]);
    expect(made.json).toMatchObject({ quantization: 'Q8_0', capabilities: ['embedding'], loaded: false });

    const load = await stack.request('POST', `/v1/models/${enc(small)}/load`, { user: operator, body: { keep_alive: '10m' } });
    expect(load.status).toBe(200);
    expect(load.json.loaded).toBe(true);
    const expires = Date.parse(load.json.expiresAt) - Date.now();
    expect(expires).toBeGreaterThan(8 * 60_000);
    expect(expires).toBeLessThan(11 * 60_000);

    const ps = await stack.request('GET', '/v1/models/running', { user: member });
    expect(ps.status).toBe(200);
    const running = ps.json.items.find((m: any) => m.name === small);
    expect(running).toMatchObject({ quantization: 'Q8_0', family: 'bert', host });
    expect(running.sizeBytes).toBeGreaterThan(0);
    expect(running.contextLength).toBeGreaterThan(0);
    expect((await stack.request('GET', `/v1/models/${enc(small)}`, { user: member })).json.loaded).toBe(true);

    const unload = await stack.request('POST', `/v1/models/${enc(small)}/unload`, { user: operator });
    expect(unload.status).toBe(200);
    expect(unload.json).toEqual({
      name: small,
      loaded: false,
      expiresAt: null,
      hosts: [{ host, loaded: false, expiresAt: null }],
      results: [{ host, outcome: 'applied', detail: null }],
      complete: true,
    });
    const after = await stack.request('GET', '/v1/models/running', { user: member });
    expect(after.json.items.map((m: any) => m.name)).not.toContain(small);

    expect((await auditRows('model.load', small)).map((r) => r.outcome)).toEqual(['success']);
    expect((await auditRows('model.unload', small)).map((r) => r.outcome)).toEqual(['success']);
    expect((await stack.request('POST', `/v1/models/${enc(small)}/load`, { user: member })).status).toBe(403);
  });
});

describe('pulling models', () => {
  it('fails a pull with a clear message within the timeout when no registry is reachable', async () => {
    const name = `parley-test-${id}-absent`;
    const r = await stack.request('POST', '/v1/models/pull', { user: operator, body: { model: name } });
    expect(r.status).toBe(202);
    expect(r.json).toMatchObject({ kind: 'model.pull', model: `${name}:latest`, deduplicated: false });
    const job = await stack.waitForJob(r.json.id, operator, 30_000);
    expect(job.state).toBe('failed');
    expect(job.error.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(job.error.message).toMatch(/^registry unreachable: /);
    expect(await auditRows('model.pull', `${name}:latest`)).toEqual([expect.objectContaining({ outcome: 'success', actor_id: operator.id })]);
  });

  it('returns the same job to concurrent pulls of the same model, and a new one for another model', async () => {
    const op = await idle.user('operator');
    const other = await idle.user('admin');
    const name = `parley-test-${id}-dedup`;
    const [a, b, c] = await Promise.all([
      idle.request('POST', '/v1/models/pull', { user: op, body: { model: name } }),
      idle.request('POST', '/v1/models/pull', { user: other, body: { model: `${name}:latest` } }),
      idle.request('POST', '/v1/models/pull', { user: op, body: { model: name } }),
    ]);
    expect([a.status, b.status, c.status]).toEqual([202, 202, 202]);
    expect(new Set([a.json.id, b.json.id, c.json.id]).size).toBe(1);
    expect([a, b, c].filter((x) => x.json.deduplicated === false)).toHaveLength(1);
    const otherModel = await idle.request('POST', '/v1/models/pull', { user: op, body: { model: `${name}-2` } });
    expect(otherModel.json.id).not.toBe(a.json.id);
    expect((await idle.request('POST', '/v1/models/pull', { user: await idle.user('member'), body: { model: name } })).status).toBe(403);
    // A pull is not a public job kind.
    expect((await idle.request('POST', '/v1/jobs', { user: op, body: { kind: 'model.pull', input: { model: name } } })).status).toBe(400);

    // Once the first is terminal, a new pull gets a new job.
    for (const jobId of [a.json.id, otherModel.json.id])
      expect((await idle.request('DELETE', `/v1/jobs/${jobId}`, { user: other })).json.state).toBe('cancelled');
    const fresh = await idle.request('POST', '/v1/models/pull', { user: op, body: { model: name } });
    expect(fresh.json).toMatchObject({ deduplicated: false });
    expect(fresh.json.id).not.toBe(a.json.id);
    await idle.request('DELETE', `/v1/jobs/${fresh.json.id}`, { user: op });
  });
});
