/**
 * A code.index job as a job tree on the real services: it fans out into one
 * code.batch child per batch, which the queue dashboard shows as its
 * children; a batch that does not complete fails the parent with the batch
 * named, and a retry does only that batch's files; cancelling the parent
 * cancels the batches it was waiting for.
 *
 * The in-process workers here serve every queue but `code-batch`, so the
 * batches wait until the test starts a worker process that serves it.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { QueueName } from '../../shared/index.ts';
import type { TestUser } from '../harness.ts';
import { startWorkerProcess } from '../support/worker-process.ts';
import { createRepo, startCodeStack, treeArchive, upload, type CodeStack } from './support.ts';

let stack: CodeStack;
let user: TestUser;
let operator: TestUser;
const processes: ChildProcess[] = [];

/** 12 files of two small functions each: with 1,500-byte batches, several batches of a few files. */
function tree(tag: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (let f = 0; f < 12; f++) {
    files[`src/${tag}${f}.ts`] = [0, 1]
      .map(
        (i) =>
          `/** ${tag} ${f}.${i}: scales a number by ${f + i}. */\nexport function ${tag}Scale${f}x${i}(n: number): number {\n  return n * ${f + i + 2};\n}\n`,
      )
      .join('\n');
  }
  return files;
}

/** A worker process that serves only the code-batch queue. */
async function batchWorker(): Promise<void> {
  const w = await startWorkerProcess(stack.env, { PARLEY_WORKER_QUEUES: 'code-batch', PARLEY_WORKER_PORT: '0' });
  processes.push(w.child);
}

/** The parent's code.batch children as recorded, in order. */
async function batchesOf(parentId: string): Promise<any[]> {
  const rows = await stack.api.db('jobs').where({ kind: 'code.batch' }).whereRaw(`input->>'parentId' = ?`, [parentId]).select('*');
  return rows.sort((a: any, b: any) => a.input.n - b.input.n);
}

/** The node of the flow tree with this id, wherever the response puts it. */
function findNode(value: any, id: string): any {
  if (!value || typeof value !== 'object') return undefined;
  if (value.id === id && Array.isArray(value.children)) return value;
  for (const v of Object.values(value)) {
    const found = findNode(v, id);
    if (found) return found;
  }
  return undefined;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function startIndex(tag: string): Promise<{ repo: string; files: Record<string, string>; id: string }> {
  const files = tree(tag);
  const repo = await createRepo(stack, user, tag);
  expect((await upload(stack, user, repo, treeArchive(files))).status).toBe(200);
  const r = await stack.request('POST', `/v1/code/repositories/${repo}/index`, { user });
  expect(r.status).toBe(202);
  return { repo, files, id: r.json.id };
}

beforeAll(async () => {
  stack = await startCodeStack({
    workers: QueueName.options.filter((q) => q !== 'code-batch'),
    env: { PARLEY_CODE_BATCH_BYTES: '1500', PARLEY_SHUTDOWN_GRACE_MS: '500' },
  });
  user = await stack.user('member');
  operator = await stack.user('operator');
});
afterEach(() => {
  for (const p of processes.splice(0)) if (p.exitCode === null) p.kill('SIGKILL');
});
afterAll(() => stack?.cleanup());

describe('a code.index job', () => {
  it('fans out into code.batch children that the queue dashboard shows as its tree', async () => {
    const { id, files } = await startIndex('tree');
    const waiting = await until('the batches', async () => {
      const b = await batchesOf(id);
      return b.length > 1 && b.every((x) => x.state === 'queued') ? b : undefined;
    });
    // The batches wait for a worker that serves their queue; the parent waits for them.
    expect((await stack.request('GET', `/v1/jobs/${id}`, { user })).json.state).toBe('active');
    await batchWorker();
    const job = await stack.waitForJob(id, user, 600_000);
    expect(job.state, JSON.stringify(job.error)).toBe('completed');
    const batches = await batchesOf(id);
    expect(batches.map((b) => b.id)).toEqual(waiting.map((b) => b.id));
    expect(job.result.batches).toBe(batches.length);
    expect(job.result.files).toBe(Object.keys(files).length);
    // Each batch: the parent's owner and priority class, its place in the plan, its share of the files, completed.
    expect(batches.map((b) => b.input.n)).toEqual(batches.map((_, i) => i));
    expect(batches.reduce((n, b) => n + b.input.files.length, 0)).toBe(Object.keys(files).length);
    for (const b of batches) {
      expect(b).toMatchObject({ owner_id: user.id, priority: 'batch', state: 'completed', queue: 'code-batch' });
      expect(b.result.files).toBe(b.input.files.length);
    }
    expect(batches.reduce((n, b) => n + b.result.chunksEmbedded, 0)).toBe(job.result.chunksEmbedded);
    // The record keeps the progress the job ended with.
    expect(job.progress).toMatchObject({ filesDone: job.result.filesChanged, filesTotal: job.result.filesChanged, chunksEmbedded: job.result.chunksEmbedded });

    // The dashboard's flow view: the parent, with the batches as its children.
    const flow = await stack.request('GET', `/admin/queues/api/queues/code/${id}/flow`, { user: operator });
    expect(flow.status, flow.text).toBe(200);
    const root = findNode(flow.json, id);
    expect(root, flow.text).toBeDefined();
    expect(root.children.map((c: any) => c.id).sort()).toEqual(batches.map((b) => b.id).sort());
    for (const c of root.children) expect(c).toMatchObject({ name: 'code.batch', state: 'completed' });
    expect(root.dependencies).toMatchObject({ processed: batches.length, unprocessed: 0 });
  });

  it('fails when a batch does not complete, names it, and a retry indexes only that batch', async () => {
    const { id, files } = await startIndex('retry');
    const waiting = await until('the batches', async () => {
      const b = await batchesOf(id);
      return b.length > 1 ? b : undefined;
    });
    const skipped = waiting[0]!;
    // A batch is its parent's: the API cancels and retries it only through the parent.
    const refused = await stack.request('DELETE', `/v1/jobs/${skipped.id}`, { user });
    expect(refused.status).toBe(409);
    expect(refused.json).toMatchObject({ code: 'INVALID_STATE', parentId: id });
    expect(refused.json.detail).toContain(`DELETE /v1/jobs/${id}`);
    // The platform can still end one (as a failure would): this batch ends cancelled before it starts.
    expect((await stack.api.jobs.cancel(skipped.id)).state).toBe('cancelled');
    // Whatever its state, the refusal names the parent.
    for (const r of [
      await stack.request('POST', `/v1/jobs/${skipped.id}/retry`, { user }),
      await stack.request('DELETE', `/v1/jobs/${skipped.id}`, { user }),
      await stack.request('POST', `/v1/jobs/${waiting[1]!.id}/retry`, { user }),
    ])
      expect(r.json, JSON.stringify(r.json)).toMatchObject({ status: 409, code: 'INVALID_STATE', parentId: id });
    expect((await stack.request('GET', `/v1/jobs/${skipped.id}`, { user })).json.parentId).toBe(id);
    await batchWorker();
    const failed = await stack.waitForJob(id, user, 600_000);
    expect(failed.state).toBe('failed');
    expect(failed.error.code).toBe('HANDLER_FAILED');
    expect(failed.error.message).toContain(`batch 0 (job ${skipped.id}) ended cancelled`);
    expect(failed.error.details.batches).toEqual([{ n: 0, job: skipped.id, state: 'cancelled', code: 'CANCELLED' }]);

    expect((await stack.request('POST', `/v1/jobs/${id}/retry`, { user })).status).toBe(202);
    const job = await stack.waitForJob(id, user, 600_000);
    expect(job.state, JSON.stringify(job.error)).toBe('completed');
    // Only the cancelled batch's files were left to do, in one new batch numbered after the first attempt's.
    expect(job.result.filesChanged).toBe(skipped.input.files.length);
    expect(job.result.files).toBe(Object.keys(files).length);
    const all = await batchesOf(id);
    expect(all).toHaveLength(waiting.length + 1);
    expect(all.at(-1)!.input.n).toBe(waiting.length);
    expect(all.at(-1)!.parent_id).toBe(id);
    // Which run planned each batch: the first attempt's, then the retry's.
    expect(all.map((b) => b.input.parentAttempt)).toEqual([...waiting.map(() => 1), 2]);
    expect(all.at(-1)!.input.files.map((f: any) => f.path)).toEqual(skipped.input.files.map((f: any) => f.path));
  });

  it('cancels the batches it waits for when it is cancelled', async () => {
    const { id } = await startIndex('stop');
    await until('the batches', async () => {
      const b = await batchesOf(id);
      return b.length > 1 ? b : undefined;
    });
    const r = await stack.request('DELETE', `/v1/jobs/${id}`, { user });
    expect(r.status).toBe(200);
    expect(r.json.state).toBe('cancelled');
    const batches = await until('every batch ended', async () => {
      const b = await batchesOf(id);
      return b.every((x) => x.state === 'cancelled') ? b : undefined;
    });
    expect(batches.length).toBeGreaterThan(1);
    // Nothing of them is left in their queue for a worker to pick up.
    const queue = stack.api.jobs.queues['code-batch'];
    expect(await queue.getJobCounts('wait', 'prioritized', 'delayed', 'active')).toEqual({ wait: 0, prioritized: 0, delayed: 0, active: 0 });
  });

  it('cancels its batches when it is cancelled while not running (handed back at a shutdown)', async () => {
    const { id } = await startIndex('handed');
    const batches = await until('the batches', async () => {
      const b = await batchesOf(id);
      return b.length > 1 ? b : undefined;
    });
    // The workers stop: the parent, waiting for its batches, is handed back to its queue; the batches stay queued.
    await stack.workers!.stop();
    await until('the parent handed back', async () => {
      const j = (await stack.request('GET', `/v1/jobs/${id}`, { user })).json;
      return j.state === 'queued' ? j : undefined;
    });
    const r = await stack.request('DELETE', `/v1/jobs/${id}`, { user });
    expect(r.status).toBe(200);
    expect(r.json.state).toBe('cancelled');
    const after = await batchesOf(id);
    expect(after.map((b) => b.id).sort()).toEqual(batches.map((b) => b.id).sort());
    for (const b of after) expect(b.state, b.id).toBe('cancelled');
    // Nothing is left in either queue for a worker to pick up later.
    for (const q of ['code', 'code-batch'] as const)
      expect(await stack.api.jobs.queues[q].getJobCounts('wait', 'prioritized', 'delayed', 'active'), q).toEqual({
        wait: 0,
        prioritized: 0,
        delayed: 0,
        active: 0,
      });
  });

  it('cancels its batches at once when cancelled while its worker is dead, before the parent is handed back', async () => {
    // The in-process workers were stopped above; the parent runs on a worker process of its own, which dies.
    const w = await startWorkerProcess(stack.env, { PARLEY_WORKER_QUEUES: 'code', PARLEY_WORKER_PORT: '0' });
    processes.push(w.child);
    const { id } = await startIndex('orphan');
    const batches = await until('the batches', async () => {
      const b = await batchesOf(id);
      return b.length > 1 ? b : undefined;
    });
    w.child.kill('SIGKILL');
    await new Promise((r) => w.child.once('exit', r));
    // The parent's lock outlives its worker: it still reads active, and the cancel can only be signalled.
    const r = await stack.request('DELETE', `/v1/jobs/${id}`, { user });
    expect(r.status).toBe(202);
    expect(r.json.state).toBe('active');
    // Its batches did not wait for that: each is cancelled already, and none is left for a worker to take.
    const after = await batchesOf(id);
    expect(after.map((b) => b.id).sort()).toEqual(batches.map((b) => b.id).sort());
    for (const b of after) expect(b.state, b.id).toBe('cancelled');
    expect(await stack.api.jobs.queues['code-batch'].getJobCounts('wait', 'prioritized', 'delayed', 'active')).toEqual({
      wait: 0,
      prioritized: 0,
      delayed: 0,
      active: 0,
    });
  });
});
