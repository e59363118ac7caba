/**
 * POST /v1/admin/vectors/maintain: an operator runs vector maintenance now
 * (after an embedding model change, say) rather than waiting for the next
 * round. Real API, workers, Ollama and LanceDB.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeCollection, codeTableSpec, submitJob } from '../../platform/code/index.ts';
import { vectorsMaintain } from '../../shared/index.ts';
import type { TestUser } from '../harness.ts';
import { createRepo, indexRepo, startCodeStack, tarGz, upload, type CodeStack } from '../code/support.ts';

let stack: CodeStack;
let member: TestUser;
let operator: TestUser;

beforeAll(async () => {
  stack = await startCodeStack();
  member = await stack.user('member');
  operator = await stack.user('operator');
});
afterAll(() => stack?.cleanup());

describe('running vector maintenance now', () => {
  it('is refused to a member', async () => {
    const r = await stack.request('POST', '/v1/admin/vectors/maintain', { user: member });
    expect(r.status).toBe(403);
    expect(r.json.code).toBe('FORBIDDEN');
  });

  it('runs a vectors.maintain job for an operator, and answers a repeat within the minute with the same job', async () => {
    const r = await stack.request('POST', '/v1/admin/vectors/maintain', { user: operator });
    expect(r.status, r.text).toBe(202);
    expect(r.json).toMatchObject({ kind: 'vectors.maintain', state: 'queued' });
    expect(r.headers.get('location')).toBe(`/v1/jobs/${r.json.id}`);
    const job = await stack.waitForJob(r.json.id, operator, 120_000);
    expect(job.state, JSON.stringify(job.error)).toBe('completed');
    expect(Array.isArray(job.result.tables)).toBe(true);
    expect(job.result).toHaveProperty('knowledgeRebuild');
    // Its owner is the operator who asked: it shows in their jobs.
    expect(job.owner).toBe(operator.id);
    const again = await stack.request('POST', '/v1/admin/vectors/maintain', { user: operator });
    expect(again.status).toBe(202);
    // The same minute: the same job (unless the clock turned the minute in between, when it is a new one).
    if (Math.floor(Date.parse(job.timings.queuedAt) / 60_000) === Math.floor(Date.now() / 60_000)) {
      expect(again.json.id).toBe(r.json.id);
      expect(again.json.state).toBe('completed');
      expect(again.headers.get('idempotent-replayed')).toBe('true');
    } else expect(again.json.id).not.toBe(r.json.id);
  });

  it('removes the generations and tables of a collection whose record is gone (a delete that stopped part-way)', async () => {
    const c = await stack.request('POST', '/v1/collections', { user: member, body: { name: 'half-deleted' } });
    const id = c.json.id as string;
    const up = await stack.request('POST', `/v1/collections/${id}/documents`, {
      user: member,
      body: { documents: [{ id: 'a', text: 'Rye bread keeps for a week.' }] },
    });
    expect((await stack.waitForJob(up.json.id, member, 120_000)).state).toBe('completed');
    const prefix = `col_${id.replaceAll('-', '')}`;
    const tables = async () => (await stack.workers!.vectors.tableNames()).filter((t) => t.startsWith(prefix));
    expect(await tables()).toHaveLength(1);
    // The delete removes the record first; here it stops there.
    await stack.api.db('vector_collections').where({ id }).delete();
    const job = await submitJob({ jobs: stack.api.jobs }, vectorsMaintain, {}, { ownerId: operator.id });
    const done = await stack.waitForJob(job.id, operator, 240_000);
    expect(done.state, JSON.stringify(done.error)).toBe('completed');
    // This job dropped it, or the workers' scheduled round did just before.
    expect(await tables()).toEqual([]);
    expect(await stack.api.db('vector_indexes').where({ collection: id })).toEqual([]);
  });

  it('removes the code rows of a repository whose record is gone (a batch that committed around its delete), and only those', async () => {
    const [gone, kept] = [await createRepo(stack, member, 'deleted-mid-index'), await createRepo(stack, member, 'kept')];
    for (const [id, word] of [
      [gone, 'sourdough'],
      [kept, 'baguette'],
    ] as const) {
      const files = [{ name: `${word}.py`, content: `def ${word}_rise(hours):\n    return hours * 2\n` }];
      expect((await upload(stack, member, id, tarGz(files))).status).toBe(200);
      expect((await indexRepo(stack, member, id)).state).toBe('completed');
    }
    const table = await stack.workers!.vectors.table(codeTableSpec((await stack.workers!.catalog.serving(codeCollection))!));
    const keptRows = await table.count([kept]);
    expect(await table.count([gone])).toBeGreaterThan(0);
    expect(keptRows).toBeGreaterThan(0);
    // What a batch that wrote after the delete's own sweep, and died before withdrawing, leaves: rows without a record.
    await stack.api.db('code_repositories').where({ id: gone }).delete();
    const job = await submitJob({ jobs: stack.api.jobs }, vectorsMaintain, {}, { ownerId: operator.id });
    const done = await stack.waitForJob(job.id, operator, 240_000);
    expect(done.state, JSON.stringify(done.error)).toBe('completed');
    // This job removed them, or the workers' scheduled round did just before.
    expect(done.result.orphanRows).toBeGreaterThanOrEqual(0);
    expect(await table.count([gone])).toBe(0);
    expect(await table.count([kept])).toBe(keptRows);
  });
});
