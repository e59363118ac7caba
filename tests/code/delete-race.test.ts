/**
 * A repository deleted while one of its index batches is embedding. The
 * delete removes the record, then the repository's rows; the batch, whose
 * embedding call was in flight all along, commits its rows after that sweep.
 * Those rows must not outlive the repository: the batch finds the record
 * gone and withdraws them, and the index job ends failed with a reason.
 *
 * Real API, workers, Ollama and LanceDB; the only fault is a proxy in front
 * of Ollama that holds the batch's embedding request until the delete is done.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeCollection } from '../../platform/code/index.ts';
import type { TestUser } from '../harness.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { until } from '../support/until.ts';
import { createRepo, startCodeStack, tarGz, upload, type CodeStack } from './support.ts';

let stack: CodeStack;
let proxy: FaultProxy;
let user: TestUser;

beforeAll(async () => {
  proxy = await startFaultProxy(process.env.OLLAMA_HOST ?? 'http://127.0.0.1:11500');
  stack = await startCodeStack({ env: { OLLAMA_HOST: proxy.url, OLLAMA_HOSTS: proxy.url } });
  user = await stack.user('member');
});
afterAll(async () => {
  await stack?.cleanup();
  await proxy?.close();
});

describe('deleting a repository while it is being indexed', () => {
  it('leaves none of its rows in any generation, although a batch commits after the delete', async () => {
    const id = await createRepo(stack, user, 'deleted-while-indexing');
    const files = Array.from({ length: 3 }, (_, i) => ({ name: `m${i}.py`, content: `def knead_${i}(dough):\n    return dough * ${i + 2}\n` }));
    expect((await upload(stack, user, id, tarGz(files))).status).toBe(200);

    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const embeds = () => proxy.log.filter((l) => l.path === '/api/embed').length;
    const before = embeds();
    proxy.inject((m, p) => m === 'POST' && p === '/api/embed', { kind: 'hold', until: held }, 100);
    const r = await stack.request('POST', `/v1/code/repositories/${id}/index`, { user });
    expect(r.status).toBe(202);
    await until('a batch to be embedding', () => embeds() > before, { timeoutMs: 120_000 });

    const del = await stack.request('DELETE', `/v1/code/repositories/${id}`, { user });
    expect(del.status).toBe(204);
    release();

    const job = await stack.waitForJob(r.json.id, user, 180_000);
    expect(job.state).toBe('failed');
    expect(JSON.stringify(job.error)).toMatch(/deleted/);
    // Every batch of it ended too, and none left a row behind in any generation.
    await until('its batches to end', async () => {
      const open = await stack.api.db('jobs').where({ parent_id: r.json.id }).whereIn('state', ['queued', 'active']).count({ n: '*' }).first();
      return Number(open?.n) === 0;
    });
    const gens = await stack.workers!.catalog.list(codeCollection);
    expect(gens.length).toBeGreaterThan(0);
    for (const gen of gens) {
      const table = await stack.workers!.vectors.existing(gen.tableName);
      if (table) expect(await table.count([id]), gen.tableName).toBe(0);
    }
  });
});
