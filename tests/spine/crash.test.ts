/**
 * Worker processes dying and stopping: a SIGKILLed worker's job is recovered
 * by another process and finishes once; a SIGTERMed worker hands its active
 * job back; a cancel reaches the job in another process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readSse, startStack, type Stack, type TestUser } from '../harness.ts';

let stack: Stack;
let user: TestUser;
const children: ChildProcess[] = [];

function workerProcess(extra: Record<string, string> = {}): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
    env: { ...stack.env, PARLEY_LOCK_MS: '2000', PARLEY_STALLED_INTERVAL_MS: '1000', PARLEY_SWEEP_INTERVAL_MS: '500', LOG_LEVEL: 'info', ...extra },
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

const exited = (c: ChildProcess) => new Promise<number | null>((r) => (c.exitCode !== null ? r(c.exitCode) : c.once('exit', (code) => r(code))));

beforeAll(async () => {
  stack = await startStack({ workers: false });
  user = await stack.user('member');
});
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});
afterAll(() => stack?.stop());

async function waitActive(id: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const j = (await stack.request('GET', `/v1/jobs/${id}`, { user })).json;
    if (j.state === 'active') return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('job never became active');
}

describe('worker crashes and shutdowns', () => {
  it('recovers a job from a SIGKILLed worker; it completes once and the client sees one final result', async () => {
    const a = await workerProcess();
    const r = await stack.request('POST', '/v1/jobs', { user, body: { kind: 'system.ping', input: { echo: 'survivor', holdMs: 3000 } } });
    const sse = readSse(`${stack.base}/v1/jobs/${r.json.id}/events`, user.auth, { timeoutMs: 60_000 });
    // Kill it once the first attempt has produced output, so the retry must tell clients to reset.
    await readSse(`${stack.base}/v1/jobs/${r.json.id}/events`, user.auth, { timeoutMs: 30_000, stopAfter: (e) => e.event === 'progress' });
    a.kill('SIGKILL');
    await exited(a);
    await workerProcess();
    const job = await stack.waitForJob(r.json.id, user, 60_000);
    expect(job.state).toBe('completed');
    expect(job.result.echo).toBe('survivor');
    expect(job.attempts).toBe(2);
    const { events } = await sse;
    expect(events.filter((e) => e.event === 'finished')).toHaveLength(1);
    expect(events.at(-1)!.data.state).toBe('completed');
    expect(events.map((e) => `${e.event}:${e.data.attempt}`)).toContain('reset:2');
    const seqs = events.map((e) => e.id);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  it('hands an active job back on SIGTERM after the grace period, and another worker finishes it', async () => {
    const a = await workerProcess({ PARLEY_SHUTDOWN_GRACE_MS: '300' });
    const r = await stack.request('POST', '/v1/jobs', { user, body: { kind: 'system.ping', input: { echo: 'handed-back', holdMs: 4000 } } });
    await waitActive(r.json.id);
    a.kill('SIGTERM');
    expect(await exited(a)).toBe(0);
    const mid = (await stack.request('GET', `/v1/jobs/${r.json.id}`, { user })).json;
    expect(mid.state).toBe('queued');
    expect(await stack.api.jobs.queues.system.getJobCounts('active', 'failed')).toEqual({ active: 0, failed: 0 });
    await workerProcess();
    const job = await stack.waitForJob(r.json.id, user, 60_000);
    expect(job.state).toBe('completed');
    expect(job.result.echo).toBe('handed-back');
  });

  it('lets a SIGTERMed worker finish a short active job before exiting', async () => {
    const a = await workerProcess({ PARLEY_SHUTDOWN_GRACE_MS: '10000' });
    const r = await stack.request('POST', '/v1/jobs', { user, body: { kind: 'system.ping', input: { echo: 'finish-me', holdMs: 1000 } } });
    await waitActive(r.json.id);
    a.kill('SIGTERM');
    expect(await exited(a)).toBe(0);
    const job = (await stack.request('GET', `/v1/jobs/${r.json.id}`, { user })).json;
    expect(job.state).toBe('completed');
    expect(job.attempts).toBe(1);
  });

  it('delivers a cancel to the worker process that holds the job', async () => {
    await workerProcess();
    const r = await stack.request('POST', '/v1/jobs', { user, body: { kind: 'system.ping', input: { holdMs: 10_000 } } });
    await waitActive(r.json.id);
    const c = await stack.request('DELETE', `/v1/jobs/${r.json.id}`, { user });
    expect(c.json.state).toBe('cancelled');
    expect(c.json.error.code).toBe('CANCELLED');
  });
});
