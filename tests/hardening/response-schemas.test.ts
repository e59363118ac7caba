/**
 * Every operation's answers against the OpenAPI document (issue 16: "a test
 * validates every response against its declared schema"): each operation
 * called the way a client would, with valid requests that succeed, and each
 * answer checked for a declared status, a declared content type and a body
 * that matches the declared schema (tests/support/openapi-fuzz.ts
 * responseValidator, Ajv on the document's own JSON Schema). The property
 * fuzz (property-fuzz.test.ts) checks the same of its mostly refused
 * requests; this covers the successes.
 *
 * Not called here: the model-changing operations (create, pull, copy, delete,
 * load, unload), which would change the shared Ollama (Schemathesis calls them
 * against a private one in CI), and the two SSE streams, whose frames are not
 * JSON Schema (tests/spine and tests/discussions read them).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../harness.ts';
import { startCodeStack, type CodeStack } from '../code/support.ts';
import { responseValidator, type OpenApiDoc } from '../support/openapi-fuzz.ts';
import { treeArchive } from '../../bench/codebench/tar.ts';

let stack: CodeStack;
let doc: OpenApiDoc;
let validate: ReturnType<typeof responseValidator>;
let member: TestUser;
let admin: TestUser;
const called = new Set<string>();
const chatModel = process.env.PARLEY_CHAT_MODEL ?? 'smollm2:135m';

beforeAll(async () => {
  // Private folders for LanceDB and uploaded trees (the code, collection and knowledge operations write them).
  stack = await startCodeStack({ workers: false });
  doc = (await stack.request('GET', '/openapi.json')).json;
  validate = responseValidator(doc);
  member = await stack.user('member');
  admin = await stack.user('admin');
});
afterAll(async () => {
  await stack?.cleanup();
});

/** Calls `method template` with the path filled in, checks the answer against the document, and returns it. */
async function call(
  method: string,
  template: string,
  opts: { user?: TestUser; params?: Record<string, string>; query?: string; body?: unknown; form?: Record<string, string>; expect?: number } = {},
) {
  let path = template;
  for (const [k, v] of Object.entries(opts.params ?? {})) path = path.replace(`{${k}}`, encodeURIComponent(v));
  const r = opts.form
    ? await stack.request(method, path + (opts.query ?? ''), {
        user: opts.user,
        body: new URLSearchParams(opts.form).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      })
    : await stack.request(method, path + (opts.query ?? ''), { user: opts.user, body: opts.body });
  const op = doc.paths[template]![method.toLowerCase()]!;
  called.add(op.operationId);
  const where = `${method} ${path} → ${r.status} ${r.text.slice(0, 300)}`;
  expect(validate(method, template, r.status, r.headers.get('content-type'), r.text), where).toEqual([]);
  if (opts.expect !== undefined) expect(r.status, where).toBe(opts.expect);
  else expect(r.status, where).toBeLessThan(300);
  return r;
}

describe('every answer as the OpenAPI document declares it', () => {
  it('ops, auth and admin', async () => {
    await call('GET', '/healthz');
    await call('GET', '/readyz', { user: admin });
    await call('GET', '/metrics', { user: admin });
    await call('GET', '/openapi.json');
    await call('GET', '/v1/auth/me', { user: member });
    await call('GET', '/v1/auth/sessions', { user: member });
    const key = await call('POST', '/v1/auth/api-keys', { user: member, body: { name: 'schema check' }, expect: 201 });
    await call('GET', '/v1/auth/api-keys', { user: member });
    await call('DELETE', '/v1/auth/api-keys/{id}', { user: member, params: { id: key.json.id } });

    const other = await stack.user('member');
    const tokens = await call('POST', '/v1/auth/token', { form: { grant_type: 'password', username: other.username, password: other.password } });
    const second: TestUser = { ...other, token: tokens.json.access_token, auth: { authorization: `Bearer ${tokens.json.access_token}` } };
    const sessions = await call('GET', '/v1/auth/sessions', { user: second });
    // The second sign-in's own session, ended from the first.
    const otherSession = sessions.json.items.find((s: { current: boolean }) => s.current);
    await call('POST', '/v1/auth/token', { form: { grant_type: 'refresh_token', refresh_token: tokens.json.refresh_token } });
    await call('DELETE', '/v1/auth/sessions/{id}', { user: other, params: { id: otherSession.id } });
    await call('POST', '/v1/auth/password', { user: other, body: { currentPassword: other.password, newPassword: `pw-${crypto.randomUUID()}` } });
    const third = await stack.user('member');
    await call('DELETE', '/v1/auth/sessions', { user: third });
    const fourth = await stack.user('member');
    await call('POST', '/v1/auth/logout', { user: fourth });

    const created = await call('POST', '/v1/admin/users', {
      user: admin,
      body: { username: `schema-${crypto.randomUUID().slice(0, 8)}`, password: `pw-${crypto.randomUUID()}`, role: 'viewer' },
      expect: 201,
    });
    await call('GET', '/v1/admin/users', { user: admin });
    await call('PATCH', '/v1/admin/users/{id}', { user: admin, params: { id: created.json.id }, body: { role: 'member' } });
    await call('POST', '/v1/admin/users/{id}/password', { user: admin, params: { id: created.json.id }, body: { password: `pw-${crypto.randomUUID()}` } });
    await call('GET', '/v1/admin/audit', { user: admin });
    await call('GET', '/v1/usage', { user: member });
    await call('GET', '/v1/admin/usage', { user: admin });
    await call('PUT', '/v1/admin/budgets', { user: admin, body: { scope: 'user', subject: created.json.id, period: 'day', limitTokens: 1000 } });
    await call('GET', '/v1/admin/budgets', { user: admin });
    await call('POST', '/v1/admin/vectors/maintain', { user: admin, expect: 202 });
    await call('GET', '/v1/models', { user: member });
    await call('GET', '/v1/models/status', { user: member });
    await call('GET', '/v1/models/running', { user: member });
    await call('GET', '/v1/models/{name}', { user: member, params: { name: chatModel } });
  });

  it('jobs', async () => {
    const job = await call('POST', '/v1/jobs', { user: member, body: { kind: 'system.ping', input: { echo: 'schema' } }, expect: 202 });
    await call('GET', '/v1/jobs', { user: member });
    await call('GET', '/v1/jobs/{id}', { user: member, params: { id: job.json.id } });
    await call('POST', '/v1/jobs/{id}/cancel', { user: member, params: { id: job.json.id } });
    await call('POST', '/v1/jobs/{id}/retry', { user: member, params: { id: job.json.id }, expect: 202 });
    const another = await call('POST', '/v1/jobs', { user: member, body: { kind: 'system.ping', input: { echo: 'again' } }, expect: 202 });
    await call('DELETE', '/v1/jobs/{id}', { user: member, params: { id: another.json.id } });
    await call('GET', '/v1/jobs/{id}', { user: member, params: { id: another.json.id } });
  });

  it('agents and discussions', async () => {
    const agents = [];
    for (const name of ['Ada', 'Brook', 'Cy'])
      agents.push((await call('POST', '/v1/agents', { user: member, body: { name, persona: `You are ${name}.`, model: chatModel }, expect: 201 })).json);
    await call('GET', '/v1/agents', { user: member });
    await call('GET', '/v1/agents/{id}', { user: member, params: { id: agents[0].id } });
    await call('PATCH', '/v1/agents/{id}', { user: member, params: { id: agents[0].id }, body: { persona: 'You are Ada, briefly.' } });
    await call('DELETE', '/v1/agents/{id}', { user: member, params: { id: agents[2].id } });
    const room = (
      await call('POST', '/v1/discussions', { user: member, body: { topic: 'Tabs or spaces?', agentIds: [agents[0].id, agents[1].id] }, expect: 201 })
    ).json;
    await call('GET', '/v1/discussions', { user: member });
    await call('GET', '/v1/discussions/{id}', { user: member, params: { id: room.id } });
    await call('POST', '/v1/discussions/{id}/start', { user: member, params: { id: room.id } });
    await call('POST', '/v1/discussions/{id}/messages', { user: member, params: { id: room.id }, body: { text: 'Spaces, surely.' } });
    await call('POST', '/v1/discussions/{id}/pause', { user: member, params: { id: room.id } });
    await call('POST', '/v1/discussions/{id}/resume', { user: member, params: { id: room.id } });
    // No workers run here, so nobody is speaking: interrupt's declared refusal, checked like the rest.
    await call('POST', '/v1/discussions/{id}/interrupt', { user: member, params: { id: room.id }, expect: 409 });
    await call('POST', '/v1/discussions/{id}/stop', { user: member, params: { id: room.id } });
    await call('GET', '/v1/discussions/{id}/transcript', { user: member, params: { id: room.id } });
    const fork = (await call('POST', '/v1/discussions/{id}/fork', { user: member, params: { id: room.id }, body: { fromTurn: 0 }, expect: 201 })).json;
    await call('GET', '/v1/discussions/{id}/compare/{otherId}', { user: member, params: { id: room.id, otherId: fork.id } });
  });

  it('code and collections', async () => {
    const repo = await call('POST', '/v1/code/repositories', {
      user: member,
      body: { name: `schema-${crypto.randomUUID().slice(0, 8)}`, source: { type: 'archive' } },
      expect: 201,
    });
    await call('GET', '/v1/code/repositories', { user: member });
    await call('GET', '/v1/code/repositories/{id}', { user: member, params: { id: repo.json.id } });
    // The archive upload is binary, which `call` does not send: sent here, checked the same way.
    const template = '/v1/code/repositories/{id}/archive';
    const res = await fetch(`${stack.base}/v1/code/repositories/${repo.json.id}/archive`, {
      method: 'PUT',
      headers: { ...member.auth, 'content-type': 'application/gzip' },
      body: new Uint8Array(treeArchive({ 'src/a.ts': 'export function add(a: number, b: number) { return a + b; }\n' })),
    });
    const text = await res.text();
    called.add(doc.paths[template]!.put!.operationId);
    expect(validate('PUT', template, res.status, res.headers.get('content-type'), text), text).toEqual([]);
    expect(res.status, text).toBe(200);
    await call('POST', '/v1/code/repositories/{id}/index', { user: member, params: { id: repo.json.id }, expect: 202 });
    await call('GET', '/v1/code/repositories/{id}/symbols', { user: member, params: { id: repo.json.id }, query: '?name=add' });
    await call('GET', '/v1/code/search', { user: member, query: '?q=add%20numbers' });
    await call('DELETE', '/v1/code/repositories/{id}', { user: member, params: { id: repo.json.id } });

    const coll = await call('POST', '/v1/collections', {
      user: member,
      body: { name: `schema-${crypto.randomUUID().slice(0, 8)}`, fields: { topic: 'string' } },
      expect: 201,
    });
    await call('GET', '/v1/collections', { user: member });
    await call('GET', '/v1/collections/{id}', { user: member, params: { id: coll.json.id } });
    await call('POST', '/v1/collections/{id}/documents', {
      user: member,
      params: { id: coll.json.id },
      body: { documents: [{ id: 'd1', text: 'Green tea is brewed cooler than black tea.', metadata: { topic: 'tea' } }] },
      expect: 202,
    });
    await call('POST', '/v1/collections/{id}/query', { user: member, params: { id: coll.json.id }, body: { text: 'tea' } });
    await call('DELETE', '/v1/collections/{id}', { user: member, params: { id: coll.json.id } });
  });

  it('knowledge', async () => {
    // No workers run here: the source stays pending, and search finds nothing yet.
    const added = await call('POST', '/v1/knowledge/sources', {
      user: member,
      body: { source: { kind: 'conversation', title: 'Schema', messages: [{ id: 'm1', speaker: 'Ada', text: 'The payroll service runs on ASR1603.' }] } },
      expect: 202,
    });
    await call('GET', '/v1/knowledge/sources', { user: member });
    await call('GET', '/v1/knowledge/sources/{id}', { user: member, params: { id: added.json.source.id } });
    await call('GET', '/v1/knowledge/search', { user: member, query: '?q=payroll&limit=5' });
    await call('GET', '/v1/knowledge/items/{id}/links', { user: member, params: { id: `${added.json.source.id}:m1:0` }, expect: 404 });
    await call('PUT', '/v1/knowledge/items/{id}/pin', { user: member, params: { id: `${added.json.source.id}:m1:0` }, expect: 404 });
    await call('DELETE', '/v1/knowledge/items/{id}/pin', { user: member, params: { id: `${added.json.source.id}:m1:0` }, expect: 404 });
    await call('PUT', '/v1/knowledge/retention', { user: member, body: { scope: 'room', room: 'r1', ttlSeconds: 3600, halfLifeSeconds: 600 } });
    await call('GET', '/v1/knowledge/retention', { user: member });
    await call('DELETE', '/v1/knowledge/sources/{id}', { user: member, params: { id: added.json.source.id } });
  });

  it('called every operation but the ones the header names', () => {
    const skipped = new Set(['createModel', 'pullModel', 'copyModel', 'deleteModel', 'loadModel', 'unloadModel', 'streamJobEvents', 'streamDiscussionEvents']);
    const all = Object.values(doc.paths).flatMap((methods) => Object.values(methods).map((op) => op.operationId));
    expect(all.filter((id) => !called.has(id) && !skipped.has(id))).toEqual([]);
  });
});
