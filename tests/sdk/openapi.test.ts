/**
 * The OpenAPI document, as people who generate clients in other languages
 * meet it: every operation named, the job input typed per kind, the error
 * responses and headers there. A client generated from it with a standard
 * generator (openapi-typescript) compiles, and types job submissions by kind.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import openapiTS, { astToString } from 'openapi-typescript';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicJobKinds } from '../../shared/index.ts';
import { startStack, type Stack } from '../harness.ts';

type Operation = {
  operationId?: string;
  description?: string;
  responses: Record<string, { headers?: Record<string, unknown>; content?: Record<string, unknown> }>;
  parameters?: { in: string; name: string }[];
  requestBody?: { content: Record<string, { schema: any }> };
};
let stack: Stack;
let doc: { paths: Record<string, Record<string, Operation>> };
const operations = () => Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method, op })));

beforeAll(async () => {
  stack = await startStack({ workers: false });
  doc = (await stack.request('GET', '/openapi.json')).json;
});
afterAll(async () => {
  await stack?.stop();
});

describe('the OpenAPI document', () => {
  it('names every operation, uniquely', () => {
    const ids = operations().map((o) => o.op.operationId);
    expect(ids.length).toBeGreaterThan(45);
    expect(ids.filter((id) => !id)).toEqual([]);
    expect(new Set(ids).size).toBe(ids.length);
    expect(doc.paths['/v1/jobs']!.post!.operationId).toBe('submitJob');
  });

  it('types the job input per kind, as a union discriminated by kind', () => {
    const schema = doc.paths['/v1/jobs']!.post!.requestBody!.content['application/json']!.schema;
    const variants: any[] = schema.oneOf ?? schema.anyOf;
    const kindOf = (v: any) => v.properties.kind.const ?? v.properties.kind.enum?.[0];
    expect(variants.map(kindOf).sort()).toEqual([...publicJobKinds].sort());
    const chat = variants.find((v) => kindOf(v) === 'llm.chat');
    expect(chat.properties.input.required).toContain('messages');
  });

  it('documents 401, 403, 404, 409, 429 and 503 where they apply', () => {
    for (const { path, op } of operations()) {
      const statuses = Object.keys(op.responses);
      if (op.operationId !== 'getHealth' && op.operationId !== 'getReadiness' && op.operationId !== 'getOpenApi' && op.operationId !== 'createToken') {
        // A route any valid credential may call (ending your own session) has no permission to lack: 401 only.
        const anyCredential = op.description?.includes('Needs any valid credential');
        expect(statuses, `${op.operationId} 401/403`).toEqual(expect.arrayContaining(anyCredential ? ['401'] : ['401', '403']));
      }
      if (path.includes('{')) expect(statuses, `${op.operationId} 404`).toContain('404');
      if (path.startsWith('/v1/')) expect(statuses, `${op.operationId} 429/503`).toEqual(expect.arrayContaining(['429', '503']));
    }
    expect(Object.keys(doc.paths['/v1/jobs/{id}']!.delete!.responses)).toContain('409');
    expect(Object.keys(doc.paths['/v1/discussions/{id}/start']!.post!.responses)).toContain('409');
  });

  it('documents Idempotency-Key, ETag, RateLimit and Retry-After', () => {
    const submit = doc.paths['/v1/jobs']!.post!;
    expect(submit.parameters).toContainEqual(expect.objectContaining({ in: 'header', name: 'Idempotency-Key' }));
    expect(Object.keys(submit.responses['202']!.headers!)).toEqual(
      expect.arrayContaining(['RateLimit', 'RateLimit-Policy', 'Idempotent-Replayed', 'X-Request-Id']),
    );
    expect(Object.keys(submit.responses['429']!.headers!)).toContain('Retry-After');
    const get = doc.paths['/v1/jobs/{id}']!.get!;
    expect(Object.keys(get.responses['200']!.headers!)).toContain('ETag');
    expect(get.parameters).toContainEqual(expect.objectContaining({ in: 'header', name: 'If-None-Match' }));
    expect(Object.keys(doc.paths['/v1/jobs/{id}']!.delete!.responses['401']!.headers!)).toContain('WWW-Authenticate');
  });

  it('holds only JSON Schema 2020-12 schemas, which a 3.1 validator loads (no tuple as an items array)', () => {
    const ajv = new Ajv2020({ strict: false });
    const invalid: string[] = [];
    const check = (where: string, schema: unknown) => {
      if (schema && !ajv.validateSchema(schema as object)) invalid.push(`${where}: ${ajv.errorsText(ajv.errors)}`);
    };
    const components = (doc as { components?: { schemas?: Record<string, unknown> } }).components?.schemas ?? {};
    for (const [name, schema] of Object.entries(components)) check(`#/components/schemas/${name}`, schema);
    for (const { path, method, op } of operations()) {
      for (const p of op.parameters ?? []) check(`${method} ${path} parameter ${p.name}`, (p as { schema?: unknown }).schema);
      for (const [type, c] of Object.entries(op.requestBody?.content ?? {})) check(`${method} ${path} request ${type}`, c.schema);
      for (const [status, r] of Object.entries(op.responses)) {
        for (const [type, c] of Object.entries(r.content ?? {})) check(`${method} ${path} ${status} ${type}`, (c as { schema?: unknown }).schema);
        for (const [name, h] of Object.entries(r.headers ?? {})) check(`${method} ${path} ${status} header ${name}`, (h as { schema?: unknown }).schema);
      }
    }
    expect(invalid).toEqual([]);
    // No tuple in the OpenAPI 3.0 form (an items list), which 2020-12 validators refuse.
    expect(JSON.stringify(doc)).not.toContain('"items":[');
  });

  it('states a same-typed tuple (the entity span) as a fixed-length array, which tools reading tuples the 3.0 way load too (Schemathesis)', () => {
    const ajv = new Ajv2020({ strict: false });
    const hit = JSON.stringify(doc.paths['/v1/knowledge/search']!.get!.responses['200']);
    expect(hit).not.toContain('prefixItems');
    const at = hit.indexOf('"span":');
    expect(at).toBeGreaterThan(0);
    // The span's schema: the balanced object after "span":.
    let depth = 0;
    let end = at + 7;
    for (; end < hit.length; end++) {
      if (hit[end] === '{') depth++;
      else if (hit[end] === '}' && --depth === 0) break;
    }
    const span = JSON.parse(hit.slice(at + 7, end + 1));
    expect(span).toMatchObject({ type: 'array', minItems: 2, maxItems: 2, items: { type: 'integer', minimum: 0 } });
    const valid = ajv.compile(span);
    expect([valid([3, 7]), valid([3]), valid([3, 7, 9]), valid([-1, 2]), valid(['3', '7'])]).toEqual([true, false, false, false, false]);
  });

  it('documents that search text must not be blank, as the API refuses it (a tab alone was schema-valid and refused: Schemathesis)', async () => {
    const ajv = new Ajv2020({ strict: false });
    const param = (path: string, name: string) =>
      (doc.paths[path]!.get!.parameters as unknown as { name: string; schema: object }[]).find((p) => p.name === name)!.schema;
    const blank = ['\t', '   ', '\n'];
    for (const [path, name] of [
      ['/v1/code/search', 'q'],
      ['/v1/code/repositories/{id}/symbols', 'name'],
      ['/v1/knowledge/search', 'q'],
    ] as const) {
      const validate = ajv.compile(param(path, name));
      for (const v of blank) expect(validate(v), `${path} ${name} ${JSON.stringify(v)}`).toBe(false);
      expect(validate(' ok '), `${path} ${name}`).toBe(true);
    }
    const member = await stack.user('member');
    const r = await stack.request('GET', `/v1/code/repositories/${crypto.randomUUID()}/symbols?name=%09`, { user: member });
    expect(r.status).toBe(400);
    expect(r.json.errors[0]).toMatchObject({ path: 'query.name', message: 'must not be blank' });
  });
});

describe('a client generated by openapi-typescript', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'parley-openapi-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('states the key rule of objects keyed by field names, as the API refuses other keys (an unkeyed `where` was schema-valid and refused: Schemathesis)', () => {
    const body = (path: string) => (doc.paths[path]!.post as any).requestBody.content['application/json'].schema;
    const keys = { type: 'string', pattern: '^[a-z][a-z0-9_]{0,40}$' };
    expect(body('/v1/collections/{id}/query').properties.where.propertyNames).toEqual(keys);
    expect(body('/v1/collections').properties.fields.propertyNames).toEqual(keys);
    expect(body('/v1/collections/{id}/documents').properties.documents.items.properties.metadata.propertyNames).toEqual(keys);
  });

  it('compiles, and types submissions by kind', async () => {
    writeFileSync(join(dir, 'schema.ts'), astToString(await openapiTS(doc as never)));
    writeFileSync(
      join(dir, 'usage.ts'),
      `import type { operations, paths } from './schema.ts';
type SubmitBody = paths['/v1/jobs']['post']['requestBody']['content']['application/json'];
export const chat: SubmitBody = { kind: 'llm.chat', input: { messages: [{ role: 'user', content: 'Hello' }] }, priority: 'interactive' };
export const ping: SubmitBody = { kind: 'system.ping', input: { echo: 'hi' } };
// @ts-expect-error llm.chat takes messages, not texts
export const wrongInput: SubmitBody = { kind: 'llm.chat', input: { texts: ['a'] } };
// @ts-expect-error internal kinds are not submitted through POST /v1/jobs
export const internal: SubmitBody = { kind: 'discussion.turn', input: {} };
type Job = operations['getJob']['responses'][200]['content']['application/json'];
export const state: Job['state'] = 'completed';
// @ts-expect-error not a job state
export const badState: Job['state'] = 'done';
type Limited = operations['submitJob']['responses'][429]['content']['application/problem+json'];
export const code: Limited['code'] = 'RATE_LIMITED';
export const headers: NonNullable<operations['submitJob']['parameters']['header']> = { 'Idempotency-Key': 'k-1' };
`,
    );
    const program = ts.createProgram([join(dir, 'usage.ts')], {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      allowImportingTsExtensions: true,
      skipLibCheck: true,
      types: [],
    });
    const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => `${d.file?.fileName ?? ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    expect(diagnostics).toEqual([]);
  });
});
