/**
 * An index job that is cancelled, and one whose worker is killed with
 * SIGKILL mid-run. The killed one resumes on another worker process: its
 * parent job waits for the batches the first attempt submitted, the batch
 * that was in flight runs again (and no other), and the index ends as a
 * clean build of the same tree would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { codeCollection, codeTableSpec } from '../../platform/code/index.ts';
import { connectDb, type Db } from '../../platform/connections/index.ts';
import { createOllamaClient } from '../../platform/ollama/index.ts';
import { Embedder, createIndexCatalog, openVectorStore } from '../../platform/vectors/index.ts';
import { loadConfig } from '../../platform/config.ts';
import { extractSource } from '../../workers/code/extract.ts';
import type { TestUser } from '../harness.ts';
import { createRepo, startCodeStack, treeArchive, upload, type CodeStack } from './support.ts';

// Each test embeds up to two full runs of the tree against one shared Ollama; its job waits allow
// 10 minutes, so the tests' own timeout (900 s) does too, instead of the suite's 120 s default.
let stack: CodeStack;
let user: TestUser;
let db: Db;
const children: ChildProcess[] = [];

/** 48 files of three small functions each: many batches of a few files. */
function tree(tag: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (let f = 0; f < 48; f++) {
    files[`src/mod${f}.ts`] = [0, 1, 2]
      .map(
        (i) =>
          `/** ${tag} helper ${f}.${i}: adds ${f} and ${i} to a counter. */\nexport function ${tag}Add${f}x${i}(n: number): number {\n  return n + ${f * 10 + i};\n}\n`,
      )
      .join('\n');
  }
  return files;
}

function workerProcess(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
    env: {
      ...stack.env,
      PARLEY_LOCK_MS: '2000',
      PARLEY_STALLED_INTERVAL_MS: '1000',
      PARLEY_SWEEP_INTERVAL_MS: '500',
      PARLEY_CODE_BATCH_BYTES: '1500',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('workers ready')) resolve(child);
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => reject(new Error(`worker exited early (${code}):\n${out}`)));
  });
}

const exited = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));

async function progressAtLeast(id: string, files: number): Promise<any> {
  for (let i = 0; i < 3000; i++) {
    const j = (await stack.request('GET', `/v1/jobs/${id}`, { user })).json;
    if (j.progress?.filesDone >= files) return j.progress;
    if (['completed', 'failed', 'cancelled'].includes(j.state)) throw new Error(`job ended before reaching ${files} files: ${JSON.stringify(j)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no progress');
}

async function tableOf() {
  const config = loadConfig(stack.env);
  const vectors = await openVectorStore({ uri: config.vectors.uri });
  const gen = await createIndexCatalog(db, config.keyPrefix).serving(codeCollection);
  return { vectors, table: await vectors.table(codeTableSpec(gen!)) };
}

beforeAll(async () => {
  stack = await startCodeStack({ workers: false });
  user = await stack.user('member');
  db = connectDb(loadConfig(stack.env).databaseUrl, { pool: 2 });
});
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});
afterAll(async () => {
  await db?.destroy();
  await stack?.cleanup();
});

describe('a killed worker', () => {
  it('resumes on another worker, redoes only the batch in flight, and ends equal to a clean build', async () => {
    const files = tree('crash');
    const repo = await createRepo(stack, user, 'crash');
    expect((await upload(stack, user, repo, treeArchive(files))).status).toBe(200);
    const a = await workerProcess();
    const r = await stack.request('POST', `/v1/code/repositories/${repo}/index`, { user });
    const atKill = await progressAtLeast(r.json.id, 6);
    a.kill('SIGKILL');
    await exited(a);
    await workerProcess();
    const job = await stack.waitForJob(r.json.id, user, 600_000);
    expect(job.state, JSON.stringify(job.error)).toBe('completed');
    expect(job.attempts).toBe(2);
    const total = Object.keys(files).length;
    // Everything the first attempt had recorded was kept; the second did the rest and nothing twice.
    expect(job.result.filesResumed).toBeGreaterThanOrEqual(atKill.filesDone);
    expect(job.result.filesChanged).toBe(total - job.result.filesResumed);
    expect(job.result.files).toBe(total);
    // Its batches: the one the killed worker was running ran again (one batch at a time per worker), no other.
    const batches = (await db('jobs').where({ kind: 'code.batch' }).whereRaw(`input->>'parentId' = ?`, [r.json.id]).select('state', 'attempts')) as {
      state: string;
      attempts: number;
    }[];
    expect(batches.length).toBeGreaterThan(1);
    expect(batches.every((b) => b.state === 'completed')).toBe(true);
    expect(batches.filter((b) => b.attempts > 1).length).toBeLessThanOrEqual(1);

    // The index equals a clean build: exactly the chunks the extractor makes of this tree, once each.
    const model = await new Embedder(createOllamaClient(loadConfig(stack.env).ollama)).describe('all-minilm');
    const expected = Object.entries(files)
      .flatMap(([path, content]) =>
        extractSource({ path, content }, { maxTokens: 254, tokenizer: model.tokenizer }).chunks.map(
          (c) => `${path}|${c.symbol}|${c.startLine}-${c.endLine}|${c.contentHash}`,
        ),
      )
      .sort();
    const { vectors, table } = await tableOf();
    const rows = await table.rows([repo], undefined, { withVectors: true });
    expect(rows.map((x) => `${x.fields.path}|${x.fields.symbol}|${x.fields.start_line}-${x.fields.end_line}|${x.contentHash}`).sort()).toEqual(expected);
    // And the vectors are the model's for those texts.
    const ollama = createOllamaClient(loadConfig(stack.env).ollama);
    const probe = rows.slice(0, 5);
    const texts = probe.map((row) => {
      const chunk = extractSource(
        { path: row.fields.path as string, content: files[row.fields.path as string]! },
        { maxTokens: 254, tokenizer: model.tokenizer },
      ).chunks.find((c) => c.contentHash === row.contentHash)!;
      return chunk.text;
    });
    const fresh = await ollama.embed({ model: 'all-minilm', input: texts }, undefined, { cache: 'bypass' });
    probe.forEach((row, i) => {
      const v = fresh.embeddings[i]!;
      const dot = v.reduce((s, x, j) => s + x * row.vector![j]!, 0);
      expect(dot).toBeGreaterThan(0.9999);
    });
    ollama.close();
    vectors.close();
  }, 900_000);
});

describe('cancel', () => {
  it('stops an index job; what it committed stays consistent and the next run does the rest', async () => {
    const files = tree('cancel');
    const repo = await createRepo(stack, user, 'cancel');
    expect((await upload(stack, user, repo, treeArchive(files))).status).toBe(200);
    await workerProcess();
    const r = await stack.request('POST', `/v1/code/repositories/${repo}/index`, { user });
    await progressAtLeast(r.json.id, 3);
    const cancelled = await stack.request('DELETE', `/v1/jobs/${r.json.id}`, { user });
    expect(cancelled.status).toBe(200);
    expect(cancelled.json.state).toBe('cancelled');
    expect(cancelled.json.error.code).toBe('CANCELLED');
    const view = (await stack.request('GET', `/v1/code/repositories/${repo}`, { user })).json;
    // Never fully indexed: no serving state claims it.
    expect(view.index?.indexedAt ?? null).toBeNull();
    // Every row belongs to a file recorded as committed, and every recorded file has its rows.
    const recorded = (await db('code_files').where({ repository_id: repo }).select('path', 'chunks')) as { path: string; chunks: number }[];
    expect(recorded.length).toBeGreaterThan(0);
    expect(recorded.length).toBeLessThan(Object.keys(files).length);
    const { vectors, table } = await tableOf();
    const rows = await table.rows([repo]);
    const byPath = new Map<string, number>();
    for (const x of rows) byPath.set(x.fields.path as string, (byPath.get(x.fields.path as string) ?? 0) + 1);
    for (const f of recorded) expect(byPath.get(f.path), f.path).toBe(f.chunks);
    vectors.close();
    const again = await stack.request('POST', `/v1/code/repositories/${repo}/index`, { user });
    const job = await stack.waitForJob(again.json.id, user, 600_000);
    expect(job.state).toBe('completed');
    expect(job.result.filesChanged).toBe(Object.keys(files).length - recorded.length);
    expect(job.result.files).toBe(Object.keys(files).length);
  }, 900_000);
});
