/**
 * `client.code` and `client.collections` against the real API, workers,
 * LanceDB and Ollama: a small repository uploaded, indexed (following its
 * job) and searched; a collection filled and queried; refusals as ParleyError.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, isNotFound, isValidationError, ParleyError, type ParleyClient, type Repository } from '../../sdk/index.ts';
import { codeRoutes } from '../../api/routes/code.ts';
import { collectionRoutes } from '../../api/routes/collections.ts';
import type { TestUser } from '../harness.ts';
import { startCodeStack, tarGz, treeArchive, type CodeStack } from '../code/support.ts';

let stack: CodeStack;
let alice: TestUser;
let client: ParleyClient;

const tree: Record<string, string> = {
  'src/slug.ts': [
    '/** Turns a title into a URL slug: lower case, dashes between words. */',
    'export function slugify(title: string): string {',
    "  return title.toLowerCase().trim().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');",
    '}',
    '',
  ].join('\n'),
  'tools/csv.py': [
    'def parse_csv_line(line):',
    '    """Split one line of comma separated values into fields."""',
    "    return [field.strip() for field in line.split(',')]",
    '',
  ].join('\n'),
};

beforeAll(async () => {
  stack = await startCodeStack({ workers: ['code', 'code-batch', 'embed'] });
  alice = await stack.user('member');
  client = createClient({ baseUrl: stack.base, auth: alice.token });
});
afterAll(() => stack?.cleanup());

const caught = async (p: Promise<unknown>): Promise<ParleyError> => {
  try {
    await p;
  } catch (err) {
    if (err instanceof ParleyError) return err;
    throw err;
  }
  throw new Error('expected a ParleyError');
};

describe('coverage', () => {
  it('has a call for every code and collections route of the API', () => {
    const c = createClient({ baseUrl: 'http://127.0.0.1:1' });
    const calls: Record<string, unknown> = {
      createRepository: c.code.repositories.create,
      listRepositories: c.code.repositories.list,
      getRepository: c.code.repositories.get,
      deleteRepository: c.code.repositories.delete,
      uploadRepositoryArchive: c.code.repositories.upload,
      indexRepository: c.code.repositories.index,
      findSymbols: c.code.repositories.symbols,
      searchCode: c.code.search,
      createCollection: c.collections.create,
      listCollections: c.collections.list,
      getCollection: c.collections.get,
      deleteCollection: c.collections.delete,
      upsertDocuments: c.collections.upsert,
      queryCollection: c.collections.query,
      maintainVectorsNow: c.collections.maintainNow,
    };
    // The route tables only close over their dependencies: none is called to list them.
    const operations = [...codeRoutes({} as never), ...collectionRoutes({} as never)].map((r) => r.operationId);
    expect(Object.keys(calls).sort()).toEqual(operations.sort());
    for (const [op, call] of Object.entries(calls)) expect(typeof call, op).toBe('function');
  });
});

describe('client.code', () => {
  let repo: Repository;

  it('registers a repository, uploads its tree and indexes it, following the job to its result', async () => {
    repo = await client.code.repositories.create({ name: 'sdk-sample', source: { type: 'archive' } });
    expect(repo).toMatchObject({ name: 'sdk-sample', visibility: 'private', index: null, snapshot: null });

    const receipt = await client.code.repositories.upload(repo.id, treeArchive(tree));
    expect(receipt).toMatchObject({ repository: repo.id, files: 2 });

    const progress: { filesTotal: number }[] = [];
    let submitted: string | undefined;
    const result = await client.code.repositories.indexAndWait(repo.id, {
      onSubmitted: (job) => void (submitted = job.id),
      onProgress: (p) => void progress.push(p),
    });
    expect(result).toMatchObject({ files: 2, filesChanged: 2, filesRemoved: 0 });
    expect(result.chunksEmbedded).toBeGreaterThan(0);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)!.filesTotal).toBe(2);

    const view = await client.code.repositories.get(repo.id);
    expect(view.index).toMatchObject({ state: 'serving', files: 2, languages: { typescript: 1, python: 1 } });
    expect(view.job).toMatchObject({ id: submitted, state: 'completed' });
    expect((await client.code.repositories.list()).map((r) => r.id)).toContain(repo.id);
  });

  it('searches it by meaning and by name, and finds its symbols', async () => {
    const hits = await client.code.search('split a line of comma separated values', { repository: [repo.id], limit: 3 });
    expect(hits.mode).toBe('hybrid');
    expect(hits.items[0]).toMatchObject({ repository: repo.id, path: 'tools/csv.py', symbol: 'parse_csv_line', kind: 'function', language: 'python' });
    expect(hits.items[0]!.snippet).toContain('def parse_csv_line(line):');

    const byName = await client.code.search('slugify', { repository: repo.id, mode: 'text', language: 'typescript' });
    expect(byName.items[0]).toMatchObject({ path: 'src/slug.ts', symbol: 'slugify', startLine: 2, endLine: 4 });

    const symbols = await client.code.repositories.symbols(repo.id, 'parse*');
    expect(symbols.map((s) => [s.qualifiedName, s.kind, s.path])).toEqual([['parse_csv_line', 'function', 'tools/csv.py']]);
  });

  it('answers a second index of an unchanged tree with nothing to embed', async () => {
    const again = await client.code.repositories.indexAndWait(repo.id);
    expect(again).toMatchObject({ filesChanged: 0, chunksEmbedded: 0 });
  });

  it('maps refusals to ParleyError: unknown ids, invalid queries, unsafe archives, indexing before an upload', async () => {
    const missing = await caught(client.code.repositories.get(randomUUID()));
    expect(isNotFound(missing)).toBe(true);
    expect(missing).toMatchObject({ status: 404, code: 'NOT_FOUND' });
    expect(missing.requestId).toEqual(expect.any(String));

    expect(await caught(client.code.search('anything', { repository: randomUUID() }))).toMatchObject({ status: 404, code: 'NOT_FOUND' });

    const invalid = await caught(client.code.search('anything', { limit: 1000 }));
    expect(isValidationError(invalid)).toBe(true);
    expect(invalid.errors?.map((e) => e.path)).toContain('query.limit');

    const empty = await client.code.repositories.create({ name: 'sdk-empty', source: { type: 'archive' } });
    const unsafe = await caught(client.code.repositories.upload(empty.id, tarGz([{ name: '../escape.ts', content: 'x' }])));
    expect(unsafe).toMatchObject({ status: 422, code: 'ARCHIVE_REJECTED', problem: { reason: 'unsafe_path' } });
    expect(unsafe.errors?.[0]?.path).toContain('escape.ts');
    expect(await caught(client.code.repositories.index(empty.id))).toMatchObject({ status: 409, code: 'INVALID_STATE' });

    await client.code.repositories.delete(empty.id);
    expect(isNotFound(await caught(client.code.repositories.get(empty.id)))).toBe(true);
  });

  it('aborts a call whose signal fired', async () => {
    const err = await caught(client.code.search('anything', {}, { signal: AbortSignal.abort() }));
    expect(err.code).toBe('ABORTED');
  });
});

describe('client.collections', () => {
  it('creates a collection, upserts documents through their job and queries them with a prefilter', async () => {
    const notes = await client.collections.create({ name: 'sdk-notes', fields: { topic: 'string' } });
    expect(notes).toMatchObject({ name: 'sdk-notes', passages: 0, fields: { topic: 'string' } });
    const result = await client.collections.upsertAndWait(notes.id, [
      { id: 'tea', text: 'Green tea is brewed with water below boiling, for two to three minutes.', metadata: { topic: 'drinks' } },
      { id: 'bread', text: 'Sourdough bread rises slowly with a wild yeast starter before baking.', metadata: { topic: 'baking' } },
    ]);
    expect(result).toMatchObject({ collectionId: notes.id, documents: 2, passages: 2, embedded: 2 });
    expect((await client.collections.get(notes.id)).passages).toBe(2);

    const hits = await client.collections.query(notes.id, 'how to brew green tea', { limit: 1 });
    expect(hits.items.map((h) => h.id)).toEqual(['tea']);
    const baking = await client.collections.query(notes.id, 'how to brew green tea', { where: { topic: 'baking' } });
    expect(baking.items.map((h) => [h.id, h.metadata.topic])).toEqual([['bread', 'baking']]);
    expect((await client.collections.list()).map((c) => c.id)).toEqual([notes.id]);

    const badField = await caught(client.collections.query(notes.id, 'tea', { where: { year: 2020 } }));
    expect(isValidationError(badField)).toBe(true);
    await client.collections.delete(notes.id);
    expect(isNotFound(await caught(client.collections.get(notes.id)))).toBe(true);
  });

  it('runs vector maintenance now for an operator, and refuses a member with a ParleyError', async () => {
    const operator = await stack.user('operator');
    const ops = createClient({ baseUrl: stack.base, auth: operator.token });
    const job = await ops.collections.maintainNow();
    expect(job).toMatchObject({ kind: 'vectors.maintain', links: { self: `/v1/jobs/${job.id}` } });
    const refused = await caught(client.collections.maintainNow());
    expect(refused).toBeInstanceOf(ParleyError);
    expect((refused as ParleyError).status).toBe(403);
  });
});
