/**
 * Indexing a repository end to end on the real services: the job, the
 * record, the search that follows, and the incremental re-index that embeds
 * only what changed, across files, branches and repositories.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeCollection, codeTableSpec } from '../../platform/code/index.ts';
import { readSse, type TestUser } from '../harness.ts';
import { createRepo, indexRepo, sampleProject, startCodeStack, treeArchive, upload, type CodeStack } from './support.ts';

let stack: CodeStack;
let alice: TestUser;
let repo: string;
let first: any;
/** The tree as last uploaded to `repo`. */
let current: Record<string, string>;

beforeAll(async () => {
  stack = await startCodeStack();
  alice = await stack.user('member');
  repo = await createRepo(stack, alice, 'sample');
  current = sampleProject();
  expect((await upload(stack, alice, repo, treeArchive(current))).status).toBe(200);
  first = await indexRepo(stack, alice, repo);
});
afterAll(() => stack?.cleanup());

async function servingTable() {
  const gen = await stack.workers!.catalog.serving(codeCollection);
  return stack.workers!.vectors.table(codeTableSpec(gen!));
}

describe('a first index', () => {
  it('completes and records files, chunks, languages and what it skipped', async () => {
    expect(first.state, JSON.stringify(first.error)).toBe('completed');
    expect(first.result).toMatchObject({ files: 4, filesChanged: 4, filesRemoved: 0 });
    expect(first.result.chunksEmbedded).toBeGreaterThan(5);
    expect(first.result.skipped).toMatchObject({ ignored: 2, unsupported: 1 });
    const r = await stack.request('GET', `/v1/code/repositories/${repo}`, { user: alice });
    expect(r.status).toBe(200);
    expect(r.json.index).toMatchObject({ state: 'serving', files: 4, chunks: first.result.chunks, languages: { typescript: 2, javascript: 1, python: 1 } });
    expect(r.json.index.identity).toMatchObject({ model: 'all-minilm:latest', dimensions: 384 });
    expect(r.json.index.indexedAt).not.toBeNull();
    expect(r.json.job).toMatchObject({ id: first.id, state: 'completed' });
  });

  it('leaves no row outside an index once the job has ended', async () => {
    const indexes = await (await servingTable()).indexes();
    expect(indexes.map((i) => i.name).sort()).toEqual(['content_hash_idx', 'name_text_idx', 'scope_idx', 'search_text_idx']);
    for (const ix of indexes) expect(ix.unindexedRows, ix.name).toBe(0);
  });

  it('finds a function by meaning, by name words, and both', async () => {
    for (const mode of ['vector', 'text', 'hybrid']) {
      const r = await stack.request('GET', `/v1/code/search?q=${encodeURIComponent('split a line of comma separated values')}&mode=${mode}&limit=3`, {
        user: alice,
      });
      expect(r.status, r.text).toBe(200);
      expect(r.json.mode).toBe(mode);
      expect(r.json.items[0], mode).toMatchObject({
        repository: repo,
        path: 'tools/inventory.py',
        symbol: 'parse_csv_line',
        kind: 'function',
        language: 'python',
      });
      expect(r.json.items[0].snippet).toContain('def parse_csv_line(line):');
    }
    const byName = await stack.request('GET', `/v1/code/search?q=parseHttpResponse&mode=text`, { user: alice });
    expect(byName.json.items[0]).toMatchObject({ symbol: 'RetryingClient.parseHttpResponse', kind: 'method', startLine: 8, endLine: 10 });
  });

  it('reports progress with files, chunks and an ETA over SSE', async () => {
    const events = await readSse(`${stack.base}/v1/jobs/${first.id}/events`, alice.auth, { timeoutMs: 10_000 });
    const progress = events.events.filter((e) => e.event === 'progress').map((e) => e.data.progress ?? e.data);
    expect(progress.length).toBeGreaterThan(0);
    const last = progress.at(-1);
    expect(last).toMatchObject({ filesTotal: 4 });
    expect(progress.some((p: any) => p.phase === 'indexing' && typeof p.filesDone === 'number')).toBe(true);
  });
});

describe('re-indexing', () => {
  it('embeds nothing when the tree has not changed', async () => {
    const again = await indexRepo(stack, alice, repo);
    expect(again.state).toBe('completed');
    expect(again.result).toMatchObject({ filesChanged: 0, chunksEmbedded: 0, files: 4, chunks: first.result.chunks });
  });

  it('submits one job for index requests made at the same instant, and a new one once it has ended', async () => {
    const before = (await stack.api.db('jobs').where({ kind: 'code.index' }).whereRaw("input->>'repositoryId' = ?", [repo]).count({ n: '*' }))[0]!.n;
    const answers = await Promise.all(Array.from({ length: 6 }, () => stack.request('POST', `/v1/code/repositories/${repo}/index`, { user: alice })));
    expect(answers.map((a) => a.status)).toEqual(Array(6).fill(202));
    const ids = new Set(answers.map((a) => a.json.id as string));
    expect(ids.size).toBe(1);
    const after = (await stack.api.db('jobs').where({ kind: 'code.index' }).whereRaw("input->>'repositoryId' = ?", [repo]).count({ n: '*' }))[0]!.n;
    expect(Number(after) - Number(before)).toBe(1);
    const done = await stack.waitForJob([...ids][0]!, alice, 600_000);
    expect(done.state).toBe('completed');
    const next = await stack.request('POST', `/v1/code/repositories/${repo}/index`, { user: alice });
    expect(next.status).toBe(202);
    expect(ids.has(next.json.id as string)).toBe(false);
    expect((await stack.waitForJob(next.json.id, alice, 600_000)).state).toBe('completed');
  });

  it('embeds only the chunks of a changed file whose content changed', async () => {
    current = {
      ...current,
      'lib/strings.js': current['lib/strings.js']!.replace('title.toLowerCase().trim()', "title.normalize('NFKD').toLowerCase().trim()"),
    };
    expect((await upload(stack, alice, repo, treeArchive(current))).status).toBe(200);
    const job = await indexRepo(stack, alice, repo);
    expect(job.state).toBe('completed');
    // slugify changed; reverseString and the module code did not.
    expect(job.result).toMatchObject({ filesChanged: 1, chunksEmbedded: 1 });
    expect(job.result.chunksReused).toBeGreaterThanOrEqual(2);
    const r = await stack.request('GET', `/v1/code/search?q=slugify&mode=text&limit=1`, { user: alice });
    expect(r.json.items[0].snippet).toContain("normalize('NFKD')");
  });

  it('removes a deleted file from the index and from search', async () => {
    const { 'tools/inventory.py': _gone, ...rest } = current;
    current = rest;
    expect((await upload(stack, alice, repo, treeArchive(current))).status).toBe(200);
    const job = await indexRepo(stack, alice, repo);
    expect(job.result).toMatchObject({ filesRemoved: 1, chunksEmbedded: 0, files: 3 });
    const r = await stack.request('GET', `/v1/code/search?q=${encodeURIComponent('inventory items warehouse')}&mode=text&repository=${repo}`, { user: alice });
    expect(r.json.items.filter((h: any) => h.path === 'tools/inventory.py')).toEqual([]);
    const symbols = await stack.request('GET', `/v1/code/repositories/${repo}/symbols?name=Inventory`, { user: alice });
    expect(symbols.json.items).toEqual([]);
  });

  it('reuses vectors across repositories with the same content, as for a branch', async () => {
    const branch = await createRepo(stack, alice, 'sample-branch');
    const files = { ...current };
    files['src/math/vector.ts'] +=
      '\n/** Scales a vector by a factor. */\nexport const scale = (a: Point, k: number): Point => ({ x: a.x * k, y: a.y * k });\n';
    expect((await upload(stack, alice, branch, treeArchive(files))).status).toBe(200);
    const job = await indexRepo(stack, alice, branch);
    expect(job.state).toBe('completed');
    // Only the new function is new content; everything else was embedded for `sample`.
    expect(job.result.chunksEmbedded).toBeLessThanOrEqual(2);
    expect(job.result.chunksReused).toBeGreaterThan(5);
    const scoped = await stack.request('GET', `/v1/code/search?q=${encodeURIComponent('scale a vector')}&repository=${branch}&limit=5`, { user: alice });
    expect(scoped.json.items.every((h: any) => h.repository === branch)).toBe(true);
    expect(scoped.json.items[0].symbol).toBe('scale');
  });
});

describe('large files', () => {
  it('indexes a file above the 512 KiB a code.chunk job takes, as long as it is under PARLEY_CODE_MAX_FILE_BYTES', async () => {
    // 400 identical functions of 40 short lines: about 640 KB of ordinary code (not minified), few distinct chunk texts.
    const fn = ['function padded(x) {', ...Array.from({ length: 40 }, () => '  x = x + 1; // keeps the line short and plain'), '  return x;', '}', ''].join(
      '\n',
    );
    const big = fn.repeat(400);
    expect(big.length).toBeGreaterThan(524_288);
    expect(Buffer.byteLength(big)).toBeLessThan(1024 * 1024);
    const id = await createRepo(stack, alice, 'large-file');
    expect((await upload(stack, alice, id, treeArchive({ 'src/big.js': big, 'src/small.js': 'export const one = () => 1;\n' }))).status).toBe(200);
    const job = await indexRepo(stack, alice, id);
    expect(job.state, JSON.stringify(job.error)).toBe('completed');
    expect(job.result).toMatchObject({ files: 2 });
    expect(job.result.skipped ?? {}).not.toHaveProperty('too_large');
    const symbols = await stack.request('GET', `/v1/code/repositories/${id}/symbols?name=padded`, { user: alice });
    expect(symbols.json.items.length).toBeGreaterThanOrEqual(50);
  });
});

describe('reuse across owners', () => {
  /** Code no other test uploads: nothing but these repositories can hold its chunks. */
  const secretTree = (tag: string) => ({
    'src/pricing.py': [
      `def discount_${tag}(total, code):`,
      `    """Applies the partner discount ${tag} to an order total."""`,
      `    return round(total * 0.${tag.length}7, 2) if code == "${tag}" else total`,
      '',
      '',
      `class Ledger${tag}:`,
      '    """Books each order against its partner account."""',
      '',
      '    def book(self, order, account):',
      `        return {"order": order, "account": account, "tag": "${tag}"}`,
      '',
    ].join('\n'),
  });

  it("regression: chunksReused does not tell a member whether another user's private repository holds the code they upload", async () => {
    const bob = await stack.user('member');
    const carol = await stack.user('member');
    const tag = `x${Math.random().toString(36).slice(2, 10)}`;
    // Bob's private repository holds the code.
    const secret = await createRepo(stack, bob, `secret-${tag}`);
    expect((await upload(stack, bob, secret, treeArchive(secretTree(tag)))).status).toBe(200);
    const own = await indexRepo(stack, bob, secret);
    expect(own.state, JSON.stringify(own.error)).toBe('completed');
    expect(own.result.chunksEmbedded).toBeGreaterThan(0);
    // Carol uploads the same code as a guess: nothing of Bob's is reused, so the counts read as for new code.
    const guess = await createRepo(stack, carol, `guess-${tag}`);
    expect((await upload(stack, carol, guess, treeArchive(secretTree(tag)))).status).toBe(200);
    const probe = await indexRepo(stack, carol, guess);
    expect(probe.state, JSON.stringify(probe.error)).toBe('completed');
    expect(probe.result).toMatchObject({ chunksReused: 0, chunksEmbedded: own.result.chunksEmbedded, namesEmbedded: own.result.namesEmbedded });
    const events = await readSse(`${stack.base}/v1/jobs/${probe.id}/events`, carol.auth, { timeoutMs: 10_000 });
    const progress = events.events.filter((e) => e.event === 'progress').map((e) => e.data.progress ?? e.data);
    expect(progress.every((p: any) => p.chunksReused === 0)).toBe(true);
    // Her search still finds her own copy only.
    const found = await stack.request('GET', `/v1/code/search?q=${encodeURIComponent(`discount_${tag}`)}&mode=text`, { user: carol });
    expect(found.json.items.length).toBeGreaterThan(0);
    expect(found.json.items.every((h: any) => h.repository === guess)).toBe(true);
  });

  it('reuses vectors of a repository shared with the owner, and of their own', async () => {
    const bob = await stack.user('member');
    const carol = await stack.user('member');
    const tag = `y${Math.random().toString(36).slice(2, 10)}`;
    const shared = await createRepo(stack, bob, `shared-${tag}`, { visibility: 'shared', sharedWith: [carol.id] });
    expect((await upload(stack, bob, shared, treeArchive(secretTree(tag)))).status).toBe(200);
    const first = await indexRepo(stack, bob, shared);
    expect(first.state, JSON.stringify(first.error)).toBe('completed');
    const copy = await createRepo(stack, carol, `copy-${tag}`);
    expect((await upload(stack, carol, copy, treeArchive(secretTree(tag)))).status).toBe(200);
    const job = await indexRepo(stack, carol, copy);
    expect(job.state, JSON.stringify(job.error)).toBe('completed');
    expect(job.result).toMatchObject({ chunksEmbedded: 0, chunksReused: first.result.chunks, namesEmbedded: 0 });
  });
});

describe("a shared repository's index job", () => {
  it('regression: a reader of the repository can follow job.links.self and links.events, but cannot cancel or retry the job', async () => {
    const reader = await stack.user('member');
    const stranger = await stack.user('member');
    const id = await createRepo(stack, alice, `shared-job-${Date.now()}`, { visibility: 'shared', sharedWith: [reader.id] });
    expect((await upload(stack, alice, id, treeArchive({ 'lib/one.js': 'function one() { return 1; }\nmodule.exports = { one };\n' }))).status).toBe(200);
    const job = await indexRepo(stack, alice, id);
    expect(job.state, JSON.stringify(job.error)).toBe('completed');

    const view = await stack.request('GET', `/v1/code/repositories/${id}`, { user: reader });
    expect(view.status).toBe(200);
    expect(view.json.job).toMatchObject({ id: job.id, links: { self: `/v1/jobs/${job.id}`, events: `/v1/jobs/${job.id}/events` } });
    const self = await stack.request('GET', view.json.job.links.self, { user: reader });
    expect(self.status, self.text).toBe(200);
    expect(self.json).toMatchObject({ id: job.id, kind: 'code.index', state: 'completed', result: { repositoryId: id } });
    const events = await readSse(`${stack.base}${view.json.job.links.events}`, reader.auth, { timeoutMs: 10_000 });
    expect(events.events.some((e) => e.event === 'finished')).toBe(true);

    // Read only: cancel and retry stay the owner's.
    for (const [method, path] of [
      ['DELETE', `/v1/jobs/${job.id}`],
      ['POST', `/v1/jobs/${job.id}/cancel`],
      ['POST', `/v1/jobs/${job.id}/retry`],
    ] as const) {
      const r = await stack.request(method, path, { user: reader });
      expect(r.status, `${method} ${path}: ${r.text}`).toBe(403);
      expect(r.json.code).toBe('FORBIDDEN');
    }
    expect((await stack.request('GET', `/v1/jobs/${job.id}`, { user: alice })).json).toMatchObject({ state: 'completed', attempts: job.attempts });
    // Someone who may not read the repository still cannot see the job at all.
    expect((await stack.request('GET', `/v1/jobs/${job.id}`, { user: stranger })).status).toBe(404);
    expect((await stack.request('DELETE', `/v1/jobs/${job.id}`, { user: stranger })).status).toBe(404);
  });
});
