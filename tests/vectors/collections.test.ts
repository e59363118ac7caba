/**
 * The collections API on the real stack: create, upsert documents as a job
 * (passages that fit the model), query in each mode with prefilters on
 * declared fields, replace and delete documents, ownership, delete.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../harness.ts';
import { startCodeStack, type CodeStack } from '../code/support.ts';

let stack: CodeStack;
let alice: TestUser;
let bob: TestUser;
let coll: string;

const docs = [
  { id: 'tea', text: 'Green tea is brewed at about eighty degrees for two minutes.', metadata: { topic: 'drinks', year: 2021, tags: ['hot', 'leaf'] } },
  { id: 'coffee', text: 'Espresso is pressed hot water through finely ground coffee beans.', metadata: { topic: 'drinks', year: 2023, tags: ['hot'] } },
  { id: 'bread', text: 'Sourdough bread rises slowly with a wild yeast starter.', metadata: { topic: 'baking', year: 2022, tags: ['oven'] } },
  {
    id: 'long',
    text: Array.from({ length: 40 }, (_, i) => `Paragraph ${i} talks about the history of the printing press and movable type in Europe.`).join('\n\n'),
    metadata: { topic: 'history', year: 1450 },
  },
];

async function upsert(documents: unknown[]) {
  const r = await stack.request('POST', `/v1/collections/${coll}/documents`, { user: alice, body: { documents } });
  expect(r.status, r.text).toBe(202);
  const job = await stack.waitForJob(r.json.id, alice, 300_000);
  expect(job.state, JSON.stringify(job.error)).toBe('completed');
  return job;
}

const query = (body: unknown, user = alice) => stack.request('POST', `/v1/collections/${coll}/query`, { user, body });

beforeAll(async () => {
  stack = await startCodeStack();
  [alice, bob] = await Promise.all([stack.user('member'), stack.user('member')]);
  const r = await stack.request('POST', '/v1/collections', {
    user: alice,
    body: { name: 'notes', fields: { topic: 'string', year: 'int', tags: 'string[]' } },
  });
  expect(r.status, r.text).toBe(201);
  coll = r.json.id;
});
afterAll(() => stack?.cleanup());

describe('collections', () => {
  it('starts empty, and answers queries with nothing', async () => {
    const r = await query({ text: 'tea' });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ items: [], index: null });
  });

  it('upserts documents as a job, splitting long ones into passages that fit', async () => {
    const job = await upsert(docs);
    expect(job.result).toMatchObject({ documents: 4 });
    expect(job.result.passages).toBeGreaterThan(5);
    expect(job.result.embedded).toBe(job.result.passages);
    const view = (await stack.request('GET', `/v1/collections/${coll}`, { user: alice })).json;
    expect(view).toMatchObject({ name: 'notes', passages: job.result.passages, index: { identity: { model: 'all-minilm:latest', dimensions: 384 } } });
  });

  it('queries by vector, text and hybrid', async () => {
    for (const mode of ['vector', 'text', 'hybrid']) {
      const r = await query({ text: 'how to brew green tea', mode, limit: 3 });
      expect(r.json.mode).toBe(mode);
      expect(r.json.items[0], mode).toMatchObject({ id: 'tea', passage: 0, metadata: { topic: 'drinks', year: 2021, tags: ['hot', 'leaf'] } });
    }
  });

  it('prefilters on declared fields', async () => {
    const drinks = await query({ text: 'printing press history', where: { topic: 'drinks' }, limit: 10 });
    expect(drinks.json.items.map((h: any) => h.id).sort()).toEqual(['coffee', 'tea']);
    const recent = await query({ text: 'anything', where: { year: { gte: 2022 } }, limit: 10 });
    expect(recent.json.items.map((h: any) => h.id).sort()).toEqual(['bread', 'coffee']);
    const tagged = await query({ text: 'anything', where: { tags: { has: 'oven' } } });
    expect(tagged.json.items.map((h: any) => h.id)).toEqual(['bread']);
    const bad = await query({ text: 'x', where: { colour: 'red' } });
    expect(bad.status).toBe(400);
    expect(bad.json.errors[0].path).toBe('where.colour');
  });

  it('replaces a document and all of its passages', async () => {
    const job = await upsert([{ id: 'long', text: 'A short replacement about printing.', metadata: { topic: 'history', year: 1450 } }]);
    expect(job.result).toMatchObject({ passages: 1 });
    const r = await query({ text: 'printing', where: { topic: 'history' }, limit: 50 });
    expect(r.json.items).toHaveLength(1);
    expect(r.json.items[0]).toMatchObject({ id: 'long', passage: 0, text: 'A short replacement about printing.' });
  });

  it('stores documents that leave a bool field out, every one of a batch (an all-null column), and filters on it', async () => {
    const c = await stack.request('POST', '/v1/collections', { user: alice, body: { name: 'flags', fields: { reviewed: 'bool' } } });
    expect(c.status).toBe(201);
    const put = async (documents: unknown[]) => {
      const r = await stack.request('POST', `/v1/collections/${c.json.id}/documents`, { user: alice, body: { documents } });
      expect(r.status).toBe(202);
      return stack.waitForJob(r.json.id, alice, 300_000);
    };
    const first = await put([{ id: 'a', text: 'Green tea is brewed at eighty degrees.' }]);
    expect(first.state, JSON.stringify(first.error)).toBe('completed');
    expect((await put([{ id: 'b', text: 'Black tea takes boiling water.', metadata: { reviewed: true } }])).state).toBe('completed');
    const q = (where: unknown) => stack.request('POST', `/v1/collections/${c.json.id}/query`, { user: alice, body: { text: 'tea', mode: 'text', where } });
    expect((await q({ reviewed: true })).json.items.map((h: any) => h.id)).toEqual(['b']);
    expect((await q(undefined)).json.items.map((h: any) => h.id).sort()).toEqual(['a', 'b']);
  });

  it('embeds nothing again for passages already stored', async () => {
    const job = await upsert([docs[0]]);
    expect(job.result).toMatchObject({ embedded: 0, reused: 1 });
  });

  it('refuses metadata that does not match the fields', async () => {
    const r = await stack.request('POST', `/v1/collections/${coll}/documents`, {
      user: alice,
      body: { documents: [{ id: 'x', text: 'y', metadata: { year: 'soon' } }] },
    });
    expect(r.status).toBe(400);
    expect(r.json.errors[0].path).toBe('documents.0.metadata.year');
  });

  it("refuses Object.prototype's names as fields, in metadata and in filters, as any other unknown name", async () => {
    for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      // Raw JSON: an object literal's __proto__ would set the prototype, not send a key.
      const up = await stack.request('POST', `/v1/collections/${coll}/documents`, {
        user: alice,
        body: `{"documents":[{"id":"p","text":"y","metadata":{"${name}":"x"}}]}`,
        headers: { 'content-type': 'application/json' },
      });
      expect(up.status, `metadata ${name}`).toBe(400);
      // `__proto__` is refused wherever it is (the parser would drop it); the others as names no field has.
      if (name === '__proto__') expect(up.json.code).toBe('MALFORMED_BODY');
      else expect(up.json.errors[0].path).toBe(`documents.0.metadata.${name}`);
      const q = await stack.request('POST', `/v1/collections/${coll}/query`, {
        user: alice,
        body: `{"text":"printing","where":{"${name}":"x"}}`,
        headers: { 'content-type': 'application/json' },
      });
      expect(q.status, `where ${name}`).toBe(400);
      if (name === '__proto__') expect(q.json.code).toBe('MALFORMED_BODY');
      else expect(q.json.errors[0].path).toBe(`where.${name}`);
    }
    // Spelled with escapes, it is the same key.
    const escaped = await stack.request('POST', `/v1/collections/${coll}/query`, {
      user: alice,
      body: String.raw`{"text":"printing","where":{"\u005f_proto__":"x"}}`,
      headers: { 'content-type': 'application/json' },
    });
    expect(escaped.status).toBe(400);
    expect(escaped.json.code).toBe('MALFORMED_BODY');
  });

  it('holds int fields to 32 bits, in documents and in filters', async () => {
    // LanceDB stores them as Int32: 3000000000 came back as -1294967296, and filters past the range or with
    // a fraction were a 500.
    const big = await stack.request('POST', `/v1/collections/${coll}/documents`, {
      user: alice,
      body: { documents: [{ id: 'x', text: 'y', metadata: { year: 3_000_000_000 } }] },
    });
    expect(big.status).toBe(400);
    expect(big.json.errors[0].path).toBe('documents.0.metadata.year');
    for (const cond of [3_000_000_000, { in: [1e21] }, 1.5]) {
      const r = await query({ text: 'tea', mode: 'hybrid', where: { year: cond } });
      expect(r.status, JSON.stringify(cond)).toBe(400);
      expect(r.json.errors[0].path).toBe('where');
    }
    // A range is a set of integers, whatever its bounds: 2021.5 < year < 1e12 is 2022 ≤ year, past the type's top included.
    const years = async (cond: unknown) =>
      ((await query({ text: 'bread tea coffee', mode: 'vector', limit: 20, where: { year: cond } })).json.items as { metadata: { year: number } }[])
        .map((h) => h.metadata.year)
        .sort();
    expect(new Set(await years({ gt: 2021.5, lt: 1e12 }))).toEqual(new Set([2022, 2023]));
    expect(new Set(await years({ lte: 2021.9 }))).toEqual(new Set([1450, 2021]));
    expect(await years({ gt: 2_147_483_647 })).toEqual([]);
    expect(new Set(await years({ gte: -1e15 }))).toEqual(new Set([1450, 2021, 2022, 2023]));
  });

  it('is private to its owner', async () => {
    expect((await query({ text: 'tea' }, bob)).status).toBe(404);
    expect((await stack.request('GET', `/v1/collections/${coll}`, { user: bob })).status).toBe(404);
    const mine = (await stack.request('GET', '/v1/collections', { user: bob })).json.items;
    expect(mine.map((c: any) => c.id)).not.toContain(coll);
  });

  it('refuses a model the role may not use', async () => {
    const r = await stack.request('POST', '/v1/collections', { user: alice, body: { name: 'big', model: 'llama3:70b' } });
    expect(r.status).toBe(422);
  });

  it('regression: refuses a malformed model name with 400 VALIDATION_FAILED, as llm.chat does, not 422 as a model the role may not use', async () => {
    for (const model of ['../../etc/passwd', 'YZFk7:', 'a/b/c/d', 'https://evil.example/x/y:1', 'bad model']) {
      const r = await stack.request('POST', '/v1/collections', { user: alice, body: { name: 'malformed', model } });
      expect(r.status, model).toBe(400);
      expect(r.json.code).toBe('VALIDATION_FAILED');
      expect(r.json.errors[0].path).toBe('model');
    }
    const mine = (await stack.request('GET', '/v1/collections', { user: alice })).json.items;
    expect(mine.map((c: any) => c.name)).not.toContain('malformed');
  });

  it('deletes the collection and its vectors', async () => {
    const tables = () => stack.workers!.vectors.tableNames();
    expect((await tables()).some((t) => t.startsWith(`col_${coll.replaceAll('-', '')}`))).toBe(true);
    expect((await stack.request('DELETE', `/v1/collections/${coll}`, { user: alice })).status).toBe(204);
    expect((await stack.request('GET', `/v1/collections/${coll}`, { user: alice })).status).toBe(404);
    expect((await tables()).some((t) => t.startsWith(`col_${coll.replaceAll('-', '')}`))).toBe(false);
  });

  it('answers reads racing its delete with 200 or 404, never 5xx, and leaves no table behind', async () => {
    // Reads that passed the ownership check met a table closed or dropped under them (a 500 in most rounds),
    // and a query could open the dropped table again, leaving its folder on disk.
    const tables = () => stack.workers!.vectors.tableNames();
    const ids: string[] = [];
    for (let round = 0; round < 8; round++) {
      const c = await stack.request('POST', '/v1/collections', { user: alice, body: { name: `racing-${round}`, fields: { topic: 'string' } } });
      const id = c.json.id as string;
      ids.push(id);
      const job = await stack.request('POST', `/v1/collections/${id}/documents`, {
        user: alice,
        body: { documents: [{ id: 'tea', text: `Green tea ${round} steeps for two minutes.`, metadata: { topic: 'drinks' } }] },
      });
      expect((await stack.waitForJob(job.json.id, alice, 120_000)).state).toBe('completed');
      // The API holds the table open, as after any query.
      expect((await stack.request('POST', `/v1/collections/${id}/query`, { user: alice, body: { text: 'tea', mode: 'hybrid' } })).status).toBe(200);
      const reads = [
        ...[0, 1, 2].map(() => stack.request('POST', `/v1/collections/${id}/query`, { user: alice, body: { text: 'green tea', mode: 'hybrid' } })),
        ...[0, 1, 2].map(() => stack.request('GET', `/v1/collections/${id}`, { user: alice })),
        stack.request('GET', '/v1/collections', { user: alice }),
      ];
      const [deleted, ...answers] = await Promise.all([stack.request('DELETE', `/v1/collections/${id}`, { user: alice }), ...reads]);
      expect(deleted.status).toBe(204);
      for (const a of answers) expect([200, 404], a.text).toContain(a.status);
    }
    const left = await tables();
    for (const id of ids) expect(left.filter((t) => t.startsWith(`col_${id.replaceAll('-', '')}`))).toEqual([]);
  });
});
