/**
 * Knowledge on the real stack (API, workers, Postgres, Redis, Ollama's
 * all-minilm, LanceDB in a temporary folder): sources in through
 * POST /v1/knowledge/sources, extracted by the knowledge.extract job, stored
 * with vectors and full text, found by the fused search with provenance down
 * to message ids; an update in a later source supersedes and `asOf` still
 * sees the older belief; a repeat in another source merges into the stored
 * item; forgetting is a reference-counted cascade.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKnowledgeRecords } from '../../platform/knowledge/index.ts';
import { createLogger } from '../../platform/observability/index.ts';
import type { DiscussionRow } from '../../platform/discussions/index.ts';
import { transcriptFeed } from '../../workers/knowledge/transcripts.ts';
import { createClient } from '../../sdk/index.ts';
import type { TestUser } from '../harness.ts';
import { startCodeStack, type CodeStack } from '../code/support.ts';

let stack: CodeStack;
let alice: TestUser;

async function addSource(body: unknown, user = alice) {
  const r = await stack.request('POST', '/v1/knowledge/sources', { user, body });
  expect(r.status, r.text).toBe(202);
  const job = await stack.waitForJob(r.json.job.id, user, 120_000);
  expect(job.state, JSON.stringify(job.error)).toBe('completed');
  return { source: r.json.source, job };
}

const search = async (q: string, extra = '', user = alice) => {
  const r = await stack.request('GET', `/v1/knowledge/search?q=${encodeURIComponent(q)}${extra}`, { user });
  expect(r.status, r.text).toBe(200);
  return r.json;
};

const chat = {
  kind: 'conversation',
  title: 'Standup, 8 May',
  messages: [
    { id: 'm1', speaker: 'Ada', text: 'The payroll service runs on server ASR1603. We migrate it on Friday.', at: '1:56 pm on 8 May, 2023' },
    { id: 'm2', speaker: 'Grace', text: 'I disagree, the migration should wait for the audit.', at: '2:01 pm on 8 May, 2023' },
    { id: 'm3', speaker: 'Ada', text: 'Thanks!' },
    { id: 'm4', speaker: 'Ada', text: 'The payroll service runs on server ASR1603.' },
  ],
};

beforeAll(async () => {
  stack = await startCodeStack();
  alice = await stack.user('member');
}, 120_000);
afterAll(() => stack?.cleanup());

describe('knowledge sources, storage and search', () => {
  let chatSource: string;

  it('extracts a conversation into stored items, with one outcome per message', async () => {
    const { source, job } = await addSource({ source: chat });
    chatSource = source.id;
    expect(source).toMatchObject({ kind: 'conversation', title: 'Standup, 8 May', scope: 'private', messages: 4, status: 'pending' });
    expect(job.result.outcomes.map((o: any) => [o.messageId, o.outcome])).toEqual([
      ['m1', 'ok'],
      ['m2', 'ok'],
      ['m3', 'empty'],
      ['m4', 'ok'],
    ]);
    // m4 repeats m1's first sentence: merged, not stored twice.
    expect(job.result.outcomes[3]).toMatchObject({ items: 0, merged: 1 });
    const view = await stack.request('GET', `/v1/knowledge/sources/${source.id}`, { user: alice });
    expect(view.json).toMatchObject({ status: 'ready', items: job.result.items, job: job.id });
    expect(view.json.outcomes).toEqual(job.result.outcomes);
    const list = await stack.request('GET', '/v1/knowledge/sources', { user: alice });
    expect(list.json.items.map((s: any) => s.id)).toContain(source.id);
  });

  it('finds items by the fused search, each with its provenance down to the message ids', async () => {
    const r = await search('Which server runs payroll?');
    const hit = r.items[0];
    expect(hit.item.text).toBe('The payroll service runs on server ASR1603.');
    expect(hit.provenance).toMatchObject({ sourceId: chatSource, messageIds: ['m1', 'm4'], span: [0, 43], extractor: 'parley.deterministic' });
    expect(hit.sources).toEqual([chatSource]);
    expect(hit.item).toMatchObject({ speaker: 'Ada', validFrom: '2023-05-08T13:56:00.000Z', scope: 'private' });
    expect(hit.ranks.vector).not.toBeNull();
    // A query naming an entity: the entity signal ranks the items that mention it.
    const byEntity = (await search('What runs on ASR1603?')).items[0];
    expect(byEntity.item.id).toBe(hit.item.id);
    expect(byEntity.ranks.entity).toBe(1);
    const rebuttal = (await search('should the migration wait for the audit')).items[0];
    expect(rebuttal.provenance.messageIds).toEqual(['m2']);
    expect(rebuttal.item.stance).toBe('rebuts');
  });

  it("ranks by a person's own statements for a question about them, not by everything they said", async () => {
    const hana = await stack.user('member');
    const said = [
      'Side note: my usual coffee is a cortado.',
      'The café downstairs started selling espresso in paper cups.',
      'My brother moved to Porto last year.',
      'I read that Lisbon is building a new tram line.',
      'For context, I live in Lisbon now.',
    ];
    await addSource({ source: { kind: 'conversation', title: 'Hana', messages: said.map((text, i) => ({ id: `h${i}`, speaker: 'Hana', text })) } }, hana);
    const r = await search('Which city does Hana live in?', '&limit=10', hana);
    // Every statement is Hana's, so each is a candidate; the entity signal votes only for those about her.
    expect(r.items.map((h: any) => h.item.text).sort()).toEqual([...said].sort());
    const byEntity = Object.fromEntries(r.items.map((h: any) => [h.item.text, h.ranks.entity]));
    expect(byEntity[said[0]!]).not.toBeNull();
    expect(byEntity[said[4]!]).not.toBeNull();
    for (const other of [said[1]!, said[2]!, said[3]!]) expect(byEntity[other], other).toBeNull();
  });

  it('links an item to its source, its entities and the message it answers', async () => {
    const r = await search('migration should wait for the audit');
    const id = r.items[0].item.id;
    const links = await stack.request('GET', `/v1/knowledge/items/${encodeURIComponent(id)}/links`, { user: alice });
    expect(links.status, links.text).toBe(200);
    const types = links.json.links.map((l: any) => `${l.type}:${l.to.kind}`);
    expect(types).toContain('derived_from:source');
    expect(types).toContain('rebuts:item');
    // Search expands one hop: the rebuttal comes with the claim it answers.
    const one = await search('Which server runs payroll?', '&limit=1');
    expect(one.items.map((h: any) => h.item.text)).toEqual(['The payroll service runs on server ASR1603.']);
    expect(one.related.map((r: any) => [r.item.text, r.via, r.provenance.messageIds])).toContainEqual([
      'I disagree, the migration should wait for the audit.',
      { type: 'rebuts', hit: one.items[0].item.id, direction: 'in' },
      ['m2'],
    ]);
    const missing = await stack.request('GET', `/v1/knowledge/items/${encodeURIComponent('no-such-item')}/links`, { user: alice });
    expect(missing.status).toBe(404);
  });

  it('supersedes on an update from a later source, and asOf still sees the older belief', async () => {
    const first = await addSource({
      source: { kind: 'conversation', title: 'Coffee, week 1', messages: [{ id: 'c1', speaker: 'Ada', text: 'My usual coffee is a cortado.' }] },
    });
    const between = new Date(Date.parse(first.source.createdAt) + 1).toISOString();
    // createdAt is the record's time; the second source is recorded after the first one's job completed, so later than `between`.
    const second = await addSource({
      source: { kind: 'conversation', title: 'Coffee, week 2', messages: [{ id: 'c2', speaker: 'Ada', text: 'My usual coffee is a flat white.' }] },
    });
    expect(second.job.result.supersedes).toBe(1);
    const now = await search('What is my usual coffee?', '&limit=5');
    const texts = now.items.map((h: any) => h.item.text);
    expect(texts[0]).toBe('My usual coffee is a flat white.');
    expect(texts).not.toContain('My usual coffee is a cortado.');
    const then = await search('What is my usual coffee?', `&limit=5&asOf=${encodeURIComponent(between)}`);
    const thenTexts = then.items.map((h: any) => h.item.text);
    expect(thenTexts[0]).toBe('My usual coffee is a cortado.');
    expect(thenTexts).not.toContain('My usual coffee is a flat white.');
    const newer = now.items[0].item.id;
    const links = await stack.request('GET', `/v1/knowledge/items/${encodeURIComponent(newer)}/links`, { user: alice });
    expect(links.json.links.filter((l: any) => l.type === 'supersedes').map((l: any) => l.to.id)).toEqual([then.items[0].item.id]);
    // The hit carries what it replaced, with its provenance and end of belief; the older value has none before it.
    expect(now.items[0].history.map((h: any) => [h.text, h.provenance.messageIds, h.supersededAt !== null])).toEqual([
      ['My usual coffee is a cortado.', ['c1'], true],
    ]);
    expect(then.items[0].history).toEqual([]);
  });

  it('carries a chain of earlier values, newest first, on the current one', async () => {
    const said = (id: string, drink: string) => ({ id, speaker: 'Bo', text: `My favourite tea is ${drink}.` });
    await addSource({
      source: {
        kind: 'conversation',
        title: 'Tea over time',
        messages: [said('t1', 'sencha'), said('t2', 'assam'), said('t3', 'rooibos'), said('t4', 'oolong')],
      },
    });
    const hits = (await search("What is Bo's favourite tea?", '&limit=5')).items;
    const current = hits.find((h: any) => h.item.text === 'My favourite tea is oolong.');
    expect(current, JSON.stringify(hits.map((h: any) => h.item.text))).toBeDefined();
    // Three steps back at most: rooibos, assam, sencha.
    expect(current.history.map((h: any) => h.provenance.messageIds[0])).toEqual(['t3', 't2', 't1']);
    expect(hits.map((h: any) => h.item.text)).not.toContain('My favourite tea is rooibos.');
  });

  it('keeps near-names apart across sources', async () => {
    const { job } = await addSource({
      source: { kind: 'conversation', title: 'Servers', messages: [{ id: 's1', speaker: 'Ada', text: 'The payroll service runs on server ASR1605.' }] },
    });
    expect(job.result).toMatchObject({ items: 1, duplicates: 0, supersedes: 0 });
  });

  it('forgets a source with a reference-counted cascade', async () => {
    // A second source repeats an item of the first: the item then stands on both.
    const repeat = await addSource({
      source: {
        kind: 'conversation',
        title: 'Repeat',
        messages: [
          { id: 'r1', speaker: 'Ada', text: 'The payroll service runs on server ASR1603.' },
          { id: 'r2', speaker: 'Ada', text: 'Lunch is at noon in the atrium.' },
        ],
      },
    });
    expect(repeat.job.result.outcomes[0]).toMatchObject({ outcome: 'ok', items: 0, merged: 1 });
    const shared = (await search('Which server runs payroll?')).items.find((h: any) => h.item.text === 'The payroll service runs on server ASR1603.');
    expect(shared.sources.sort()).toEqual([chatSource, repeat.source.id].sort());

    expect((await stack.request('DELETE', `/v1/knowledge/sources/${chatSource}`, { user: alice })).status).toBe(204);
    expect((await stack.request('GET', `/v1/knowledge/sources/${chatSource}`, { user: alice })).status).toBe(404);
    const after = await search('Which server runs payroll?', '&limit=20');
    const texts = after.items.map((h: any) => h.item.text);
    // Still said by the repeat; the rebuttal came only from the forgotten source.
    expect(after.items.find((h: any) => h.item.text === 'The payroll service runs on server ASR1603.').sources).toEqual([repeat.source.id]);
    expect(texts).not.toContain('I disagree, the migration should wait for the audit.');
    expect(
      (await search('migration should wait for the audit', '&limit=20')).items.every((h: any) => h.provenance.sourceId !== chatSource || h.sources.length > 0),
    ).toBe(true);

    expect((await stack.request('DELETE', `/v1/knowledge/sources/${repeat.source.id}`, { user: alice })).status).toBe(204);
    const gone = await search('Which server runs payroll?', '&limit=50');
    expect(gone.items.map((h: any) => h.item.text)).not.toContain('The payroll service runs on server ASR1603.');
    expect(gone.items.map((h: any) => h.item.text)).not.toContain('Lunch is at noon in the atrium.');
  });

  it('forgetting the newer of two beliefs makes the older one current again', async () => {
    const list = (await stack.request('GET', '/v1/knowledge/sources', { user: alice })).json.items;
    const week2 = list.find((s: any) => s.title === 'Coffee, week 2');
    expect((await stack.request('DELETE', `/v1/knowledge/sources/${week2.id}`, { user: alice })).status).toBe(204);
    const now = await search('What is my usual coffee?', '&limit=5');
    expect(now.items[0].item).toMatchObject({ text: 'My usual coffee is a cortado.', supersededAt: null, validTo: null });
  });

  it('feeds a committed room turn in as a room-scoped source, once', async () => {
    const feed = transcriptFeed({ records: createKnowledgeRecords(stack.api.db), jobs: stack.api.jobs, log: createLogger('test', 'warn') });
    const room = { id: crypto.randomUUID(), owner_id: alice.id, topic: 'Tabs or spaces?' } as DiscussionRow;
    const turn = { turn: 3, agentId: 'agent-ada', agentName: 'Ada', text: 'Spaces keep the diff of the parser readable.' };
    await feed(room, turn);
    await feed(room, turn);
    const sources = (await stack.request('GET', '/v1/knowledge/sources', { user: alice })).json.items.filter((s: any) => s.room === room.id);
    expect(sources).toHaveLength(1);
    expect(sources[0]).toMatchObject({ scope: 'room', messages: 1 });
    expect((await stack.waitForJob(sources[0].job, alice, 120_000)).state).toBe('completed');
    const r = await search('spaces parser diff', `&scope=room&room=${room.id}`);
    expect(r.items.map((h: any) => [h.item.text, h.item.speaker, h.provenance.messageIds])).toEqual([
      ['Spaces keep the diff of the parser readable.', 'Ada', ['turn-3']],
    ]);
  });

  it('stores a statement longer than the embedding window instead of failing the source', async () => {
    const runOn = `The quarterly report lists ${Array.from({ length: 120 }, (_, i) => `line item ${i} for the warehouse in Leeds`).join(' and ')}`;
    const { job } = await addSource({ source: { kind: 'document', title: 'Run-on', text: `${runOn}.` } });
    expect(job.result.outcomes).toEqual([{ messageId: null, outcome: 'ok', items: 1, merged: 0 }]);
    const r = await search('quarterly report line items warehouse', '&limit=5');
    expect(r.items.map((h: any) => h.item.text)).toContain(`${runOn}.`);
  });

  it('is there in the SDK: add, follow the job, search, links, forget', async () => {
    const client = createClient({ baseUrl: stack.base, auth: alice.token });
    const { source, job } = await client.knowledge.addSource({ kind: 'document', title: 'SDK', text: 'The staging cluster lives in Frankfurt.' });
    expect((await stack.waitForJob(job.id, alice, 120_000)).state).toBe('completed');
    expect((await client.knowledge.getSource(source.id)).outcomes).toEqual([{ messageId: null, outcome: 'ok', items: 1, merged: 0 }]);
    const found = await client.knowledge.search({ q: 'where is the staging cluster', limit: 1 });
    expect(found.items[0]!.item.text).toBe('The staging cluster lives in Frankfurt.');
    expect((await client.knowledge.links(found.items[0]!.item.id)).links.map((l) => l.type)).toContain('derived_from');
    await client.knowledge.forget(source.id);
    expect((await client.knowledge.listSources()).map((s) => s.id)).not.toContain(source.id);
  });

  it('refuses an invalid source or query', async () => {
    const dup = await stack.request('POST', '/v1/knowledge/sources', {
      user: alice,
      body: {
        source: {
          kind: 'conversation',
          title: 't',
          messages: [
            { id: 'a', speaker: 's', text: 'x' },
            { id: 'a', speaker: 's', text: 'y' },
          ],
        },
      },
    });
    expect(dup.status).toBe(400);
    const room = await stack.request('POST', '/v1/knowledge/sources', {
      user: alice,
      body: { source: { kind: 'document', title: 't', text: 'x' }, scope: { scope: 'room' } },
    });
    expect(room.status).toBe(400);
    expect((await stack.request('GET', '/v1/knowledge/search?q=x&asOf=yesterday', { user: alice })).status).toBe(400);
    // A NUL anywhere the record keeps a string (room, message id, speaker, time) is refused, never a 500 from Postgres.
    for (const body of [
      { source: { kind: 'document', title: 't', text: 'x' }, scope: { scope: 'room', room: 'r\u0000' } },
      { source: { kind: 'conversation', title: 't', messages: [{ id: 'm\u0000', speaker: 's', text: 'x' }] } },
      { source: { kind: 'conversation', title: 't', messages: [{ id: 'm', speaker: 's\u0000', text: 'x' }] } },
      { source: { kind: 'conversation', title: 't', messages: [{ id: 'm', speaker: 's', text: 'x', at: '\u0000' }] } },
    ]) {
      const r = await stack.request('POST', '/v1/knowledge/sources', { user: alice, body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.code).toBe('VALIDATION_FAILED');
    }
  });
});
