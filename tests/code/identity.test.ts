/**
 * Changing the code index's identity (here, its embedding model) builds a
 * new generation in the background while the old one keeps serving, then
 * switches. Every search answers from one generation, embedded with that
 * generation's model: during the build the answers are exactly the old
 * index's, after the switch exactly the new one's, never a mixture.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeCollection } from '../../platform/code/index.ts';
import { startWorkers } from '../../workers/main.ts';
import type { TestUser } from '../harness.ts';
import { createRepo, indexRepo, sampleProject, startCodeStack, treeArchive, upload, type CodeStack } from './support.ts';

let stack: CodeStack;
let alice: TestUser;
let repo: string;
let second: Awaited<ReturnType<typeof startWorkers>> | undefined;

beforeAll(async () => {
  stack = await startCodeStack({ env: { PARLEY_VECTORS_RETIRED_GRACE_S: '0' } });
  alice = await stack.user('member');
  repo = await createRepo(stack, alice, 'swap');
  expect((await upload(stack, alice, repo, treeArchive(sampleProject()))).status).toBe(200);
  expect((await indexRepo(stack, alice, repo)).state).toBe('completed');
});
afterAll(async () => {
  await second?.stop();
  await stack?.cleanup();
});

const queries = ['split comma separated values', 'retry an http call', 'distance between two points'];
const ask = async (q: string) => (await stack.request('GET', `/v1/code/search?q=${encodeURIComponent(q)}&mode=vector&limit=5`, { user: alice })).json;
const fingerprint = (r: any) => r.items.map((h: any) => `${h.path}:${h.symbol}:${h.score.toFixed(5)}`).join('|');

describe('an identity change', () => {
  it('swaps the index without ever answering from two embedding spaces', { timeout: 900_000 }, async () => {
    const before = await Promise.all(queries.map(ask));
    const g1 = before[0].index;
    expect(g1.identity).toMatchObject({ model: 'all-minilm:latest', dimensions: 384 });
    const oldAnswers = before.map(fingerprint);

    // Workers configured with another embedding model: their maintenance round starts the rebuild.
    await stack.workers!.stop();
    second = await startWorkers({ ...stack.env, PARLEY_CODE_EMBED_MODEL: 'smollm2:135m' });
    const seen: any[] = [];
    let promotedAt = 0;
    const deadline = Date.now() + 600_000;
    while (Date.now() < deadline) {
      const answers = await Promise.all(queries.map(ask));
      seen.push(...answers.map((a, i) => ({ a, i })));
      if (answers.every((a) => a.index.generation !== g1.generation)) {
        promotedAt = seen.length;
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(promotedAt).toBeGreaterThan(0);
    const after = await Promise.all(queries.map(ask));
    const g2 = after[0].index;
    expect(g2.identity).toMatchObject({ model: 'smollm2:135m', dimensions: 576 });
    const newAnswers = after.map(fingerprint);
    // Each answer is wholly the old index's or wholly the new one's.
    let oldCount = 0;
    for (const { a, i } of seen) {
      if (a.index.generation === g1.generation) {
        expect(fingerprint(a)).toBe(oldAnswers[i]);
        oldCount++;
      } else {
        expect(a.index.generation).toBe(g2.generation);
        expect(fingerprint(a)).toBe(newAnswers[i]);
      }
    }
    // The old index really served while the new one was building.
    expect(oldCount).toBeGreaterThan(0);
    // The repository now reports the new identity, and the old generation is retired.
    const view = (await stack.request('GET', `/v1/code/repositories/${repo}`, { user: alice })).json;
    expect(view.index.identity.model).toBe('smollm2:135m');
    const gens = await second.catalog.list(codeCollection);
    expect(gens.find((g) => g.id === g1.generation)?.state ?? 'dropped').toMatch(/retired|dropped/);
  });
});
