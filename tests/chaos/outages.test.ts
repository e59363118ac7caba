/**
 * Outages of the backing services, on private instances (tests/support/
 * private-services.ts) so nothing else is disturbed: Redis killed, Redis
 * hung, Postgres stopped, and the API killed between recording a job and
 * handing it to the queue. Regressions pinned (issue: reliability under
 * faults): Postgres down answered 500 (`connect ECONNREFUSED`) and then 503
 * "The rate limiter is unavailable" without Retry-After; a hung Redis held
 * requests until the 30 s request timeout.
 *
 * Invariants: during an outage the API answers only successes or 503 with
 * Retry-After and a code naming the service (never a 500); it answers while
 * the service is still down (every request issued during the outage is
 * answered before the service comes back, so no answer waits on it); and
 * every job that was accepted (202) ends completed once the service is back.
 * Latencies are printed, not asserted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateLatest } from '../../platform/connections/index.ts';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { startPrivatePostgres, startPrivateRedis, type PrivatePostgres, type PrivateRedis } from '../support/private-services.ts';
import { until } from '../support/until.ts';

/** The request-path bounds as shipped (the harness relaxes them for loaded test machines). */
const productionBounds = { PARLEY_API_REDIS_TIMEOUT_MS: '1000', PARLEY_API_DB_QUERY_TIMEOUT_MS: '1500', PARLEY_API_DB_CONNECT_TIMEOUT_MS: '1000' };

let redis: PrivateRedis;
let postgres: PrivatePostgres;

beforeAll(async () => {
  [redis, postgres] = await Promise.all([startPrivateRedis(), startPrivatePostgres()]);
  await migrateLatest(postgres.url);
}, 120_000);
afterAll(async () => {
  await Promise.all([redis?.close(), postgres?.close()]);
});

interface Answer {
  status: number;
  code?: string;
  retryAfter: string | null;
  ms: number;
  id?: string;
}

async function call(stack: Stack, user: TestUser, method: string, path: string, body?: unknown): Promise<Answer> {
  const t0 = performance.now();
  try {
    const r = await stack.request(method, path, { user, body });
    return {
      status: r.status,
      code: r.json?.code,
      retryAfter: r.headers.get('retry-after'),
      ms: performance.now() - t0,
      id: r.status === 202 ? r.json?.id : undefined,
    };
  } catch {
    return { status: 0, retryAfter: null, ms: performance.now() - t0 };
  }
}

/**
 * Requests spread over `ms` (and on after that until `stopWhen()` holds, when given), half submits and
 * half reads; resolves when every one is answered. `onAnswer` hears each answer as it comes.
 */
async function traffic(stack: Stack, user: TestUser, ms: number, everyMs = 100, onAnswer?: (a: Answer) => void, stopWhen?: () => boolean): Promise<Answer[]> {
  const out: Promise<Answer>[] = [];
  const t0 = Date.now();
  for (let i = 0; Date.now() - t0 < ms || (stopWhen !== undefined && !stopWhen()); i++) {
    const answer =
      i % 2 ? call(stack, user, 'GET', '/v1/jobs?limit=5') : call(stack, user, 'POST', '/v1/jobs', { kind: 'system.ping', input: { echo: `o${i}` } });
    out.push(onAnswer ? answer.then((a) => (onAnswer(a), a)) : answer);
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return Promise.all(out);
}

function expectOnlySuccessOr503(answers: Answer[], service: 'REDIS_UNAVAILABLE' | 'POSTGRES_UNAVAILABLE') {
  const refused = answers.filter((a) => a.status === 503);
  const bad = answers.filter((a) => ![200, 202, 503].includes(a.status));
  expect(bad, JSON.stringify(bad.slice(0, 5))).toEqual([]);
  for (const a of refused) {
    expect(a.code, JSON.stringify(a)).toBe(service);
    expect(Number(a.retryAfter)).toBeGreaterThan(0);
  }
  return refused.length;
}

const report = (label: string, answers: Answer[]) => {
  const ms = answers.map((a) => a.ms).sort((a, b) => a - b);
  console.log(
    `${label}: ${answers.length} requests, ${answers.filter((a) => a.status === 503).length} refused with 503; latency p50 ${ms[ms.length >> 1]?.toFixed(0)} ms, max ${ms.at(-1)?.toFixed(0)} ms`,
  );
};

async function allComplete(stack: Stack, user: TestUser, ids: string[]): Promise<void> {
  for (const id of ids) {
    const j = await stack.waitForJob(id, user, 90_000);
    expect(j.state, id).toBe('completed');
  }
}

describe('Redis outages', () => {
  let stack: Stack;
  let user: TestUser;
  beforeAll(async () => {
    stack = await startStack({
      env: { REDIS_URL: redis.url, DATABASE_URL: postgres.url, PARLEY_SWEEP_INTERVAL_MS: '500', PARLEY_LOCK_MS: '3000', ...productionBounds },
    });
    user = await stack.user('member');
  });
  afterAll(() => stack?.stop());

  it('Redis killed: only 202/200 or 503 REDIS_UNAVAILABLE with Retry-After, answered while it is down, and every accepted job completes', async () => {
    // Redis dies while traffic flows: once a few submits were accepted, with more requests still coming.
    // On a busy machine the first submits may wait; the traffic goes on until 1.5 s after the kill however long that takes.
    let acceptedBefore = 0;
    let killedAt = 0;
    const before = traffic(
      stack,
      user,
      1500,
      100,
      (a) => void (a.status === 202 && acceptedBefore++),
      () => killedAt > 0 && Date.now() - killedAt > 1500,
    );
    await until('submits to be accepted before the outage', () => acceptedBefore >= 2);
    await redis.kill();
    killedAt = Date.now();
    const during = await traffic(stack, user, 2500);
    // Every request made while Redis is dead has its answer now, before Redis comes back.
    expect(during.length).toBeGreaterThan(10);
    const refused = expectOnlySuccessOr503(during, 'REDIS_UNAVAILABLE');
    expect(refused).toBeGreaterThan(0);
    await redis.start();
    const early = await before;
    expectOnlySuccessOr503(early, 'REDIS_UNAVAILABLE');
    report('redis killed', during);
    await allComplete(
      stack,
      user,
      [...early, ...during].flatMap((a) => (a.id ? [a.id] : [])),
    );
  });

  it('Redis hung (SIGSTOP): every request is answered while it is still hung, with 503 REDIS_UNAVAILABLE and Retry-After', async () => {
    redis.hang();
    let during: Answer[];
    try {
      during = await traffic(stack, user, 3000, 150);
    } finally {
      redis.unhang();
    }
    expect(during.length).toBeGreaterThan(10);
    expect(expectOnlySuccessOr503(during, 'REDIS_UNAVAILABLE')).toBeGreaterThan(0);
    report('redis hung', during);
    await allComplete(
      stack,
      user,
      during.flatMap((a) => (a.id ? [a.id] : [])),
    );
  });
});

describe('Postgres stopped', () => {
  let stack: Stack;
  let user: TestUser;
  beforeAll(async () => {
    stack = await startStack({
      env: { REDIS_URL: redis.url, DATABASE_URL: postgres.url, PARLEY_SWEEP_INTERVAL_MS: '500', PARLEY_LOCK_MS: '3000', ...productionBounds },
    });
    user = await stack.user('member');
  });
  afterAll(() => stack?.stop());

  it('answers 503 POSTGRES_UNAVAILABLE with Retry-After while it is down, says so in /readyz, and the workers resume by themselves', async () => {
    const accepted = await traffic(stack, user, 800);
    await postgres.stop();
    let during: Answer[];
    let ready: { status: number; json: any };
    try {
      during = await traffic(stack, user, 2500);
      ready = await stack.request('GET', '/readyz');
    } finally {
      await postgres.start();
    }
    expect(expectOnlySuccessOr503(during, 'POSTGRES_UNAVAILABLE')).toBeGreaterThan(0);
    expect(ready.status).toBe(503);
    expect(ready.json.checks.postgres.ok).toBe(false);
    expect(ready.json.checks.redis.ok).toBe(true);
    report('postgres stopped', during);
    // Jobs accepted before and during the outage all complete once Postgres is back: nothing was lost or failed.
    await allComplete(
      stack,
      user,
      [...accepted, ...during].flatMap((a) => (a.id ? [a.id] : [])),
    );
    // As a client would: a 503 after the outage is retried after its Retry-After, a few times.
    let after = await call(stack, user, 'POST', '/v1/jobs', { kind: 'system.ping', input: { echo: 'after' } });
    for (let i = 0; i < 5 && after.status === 503; i++) {
      await new Promise((r) => setTimeout(r, Number(after.retryAfter ?? 1) * 1000));
      after = await call(stack, user, 'POST', '/v1/jobs', { kind: 'system.ping', input: { echo: 'after' } });
    }
    expect(after.status).toBe(202);
    await allComplete(stack, user, [after.id!]);
  });
});

describe('the API killed between recording a job and handing it to the queue', () => {
  it('the recorded job is handed off by the sweeper and completes', async () => {
    const stack = await startStack({
      env: { REDIS_URL: redis.url, DATABASE_URL: postgres.url, PARLEY_SWEEP_INTERVAL_MS: '500', PARLEY_LOCK_MS: '2000', ...productionBounds },
    });
    let api: ChildProcess | undefined;
    try {
      const user = await stack.user('member');
      // A second API process that dies at the failpoint, on the same Redis and Postgres.
      const port = 20_000 + Math.floor(Math.random() * 20_000);
      api = spawn(process.execPath, ['--import', 'tsx', 'api/main.ts'], {
        env: { ...stack.env, PORT: String(port), PARLEY_FAILPOINTS: 'accept.after-record' },
        stdio: 'ignore',
      });
      const base = `http://127.0.0.1:${port}`;
      for (
        let i = 0;
        i < 200 &&
        !(await fetch(`${base}/healthz`).then(
          (r) => r.ok,
          () => false,
        ));
        i++
      )
        await new Promise((r) => setTimeout(r, 100));
      const died = new Promise<void>((r) => api!.once('exit', () => r()));
      const sent = await fetch(`${base}/v1/jobs`, {
        method: 'POST',
        headers: { ...user.auth, 'content-type': 'application/json', 'idempotency-key': 'killed-mid-submit' },
        body: JSON.stringify({ kind: 'system.ping', input: { echo: 'orphan' } }),
      }).then(
        (r) => r.status,
        () => 0,
      );
      expect(sent).toBe(0);
      await died;
      // The client retries with its idempotency key on a live API: the same job, recorded once.
      const retried = await stack.request('POST', '/v1/jobs', {
        user,
        headers: { 'idempotency-key': 'killed-mid-submit' },
        body: { kind: 'system.ping', input: { echo: 'orphan' } },
      });
      expect(retried.status).toBe(202);
      const job = await stack.waitForJob(retried.json.id, user, 60_000);
      expect(job.state).toBe('completed');
      expect(job.result.echo).toBe('orphan');
      const list = (await stack.request('GET', '/v1/jobs?kind=system.ping', { user })).json;
      expect(list.items.filter((j: { id: string }) => j.id === retried.json.id)).toHaveLength(1);
      expect(list.items).toHaveLength(1);
    } finally {
      api?.kill('SIGKILL');
      await stack.stop();
    }
  });
});
