/**
 * Rate limits, counted in Redis under the stack's key prefix. Token-endpoint
 * limits are the defaults (10 per IP, 5 failed logins per username, per
 * minute); job limits are set low for this stack so they are quick to reach.
 * Each test uses its own username and its own loopback source address
 * (127.0.x.y), so no two tests share a bucket.
 */
import { createHash, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { passwordHashCount } from '../../api/auth/passwords.ts';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { until } from '../support/until.ts';
import { countJobs, freshLoopback, pingJob, rawRequest, tokenRequest, uniqueName, type HttpResult } from './helpers.ts';

let stack: Stack;
const jobWrite = { member: 3, operator: 6, viewer: 2 };
const jobRead = { member: 5, viewer: 4 };
const apiWrite = { member: 4 };
const apiRead = { member: 6 };

beforeAll(async () => {
  stack = await startStack({
    workers: false,
    env: {
      PARLEY_RATE_JOBS_WRITE: `member=${jobWrite.member},operator=${jobWrite.operator},viewer=${jobWrite.viewer}`,
      PARLEY_RATE_JOBS_READ: `member=${jobRead.member},viewer=${jobRead.viewer}`,
      PARLEY_RATE_API_WRITE: `member=${apiWrite.member}`,
      PARLEY_RATE_API_READ: `member=${apiRead.member}`,
    },
  });
});
afterAll(() => stack?.stop());

const perIp = () => stack.api.config.rateLimits.token.perIp;
const perUsername = () => stack.api.config.rateLimits.token.perUsername;

function expectLimited(res: HttpResult | { status: number; headers: Headers; json: any }, policy: string) {
  const header = (name: string) => (res.headers instanceof Headers ? res.headers.get(name) : ([] as string[]).concat(res.headers[name] ?? []).join(', ')) ?? '';
  expect(res.status).toBe(429);
  if (policy.startsWith('token-')) {
    // The token endpoint answers in RFC 6749 §5.2's shape: application/json with `error` (slow_down: RFC 8628's "retry more slowly").
    expect(header('content-type')).toMatch(/^application\/json/);
    expect(res.json).toMatchObject({ status: 429, code: 'RATE_LIMITED', error: 'slow_down', error_description: expect.any(String) });
  } else {
    expect(header('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.json).toMatchObject({ status: 429, code: 'RATE_LIMITED', title: 'Too many requests' });
  }
  const retryAfter = Number(header('retry-after'));
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThan(0);
  expect(retryAfter).toBeLessThanOrEqual(stack.api.config.rateLimits.windowMs / 1000);
  // draft-ietf-httpapi-ratelimit-headers (draft 8): "<policy>"; r=<remaining>; t=<reset> and "<policy>"; q=<quota>; w=<window>
  expect(header('ratelimit')).toMatch(new RegExp(`"${policy}"; r=0; t=\\d+`));
  expect(header('ratelimit-policy')).toMatch(new RegExp(`"${policy}"; q=\\d+; w=\\d+`));
}

async function newUser(): Promise<{ username: string; password: string }> {
  const username = uniqueName('brute');
  const password = `pw-${randomUUID()}`;
  await stack.api.auth.users.create({ username, password, role: 'member' });
  return { username, password };
}

describe('brute force on POST /v1/auth/token', () => {
  it('answers 429 once a username has used up its failed logins, and computes no password hash beyond the limit', async () => {
    const { username } = await newUser();
    const ip = freshLoopback();
    const hashesBefore = passwordHashCount();
    const answers: HttpResult[] = [];
    for (let i = 0; i < perUsername() + 3; i++)
      answers.push(await tokenRequest(stack, { grant_type: 'password', username, password: `guess-${i}` }, { localAddress: ip }));
    expect(answers.slice(0, perUsername()).map((a) => a.status)).toEqual(Array(perUsername()).fill(400));
    for (const limited of answers.slice(perUsername())) {
      expectLimited(limited, 'token-username');
      expect(limited.headers['cache-control']).toBe('no-store');
    }
    const hashes = passwordHashCount() - hashesBefore;
    expect(hashes).toBeGreaterThan(0);
    expect(hashes).toBeLessThanOrEqual(perUsername());
  });

  it('keeps refusing the username from other addresses, even with the right password', async () => {
    const { username, password } = await newUser();
    const attacker = freshLoopback();
    for (let i = 0; i < perUsername(); i++) await tokenRequest(stack, { grant_type: 'password', username, password: `guess-${i}` }, { localAddress: attacker });
    const hashesBefore = passwordHashCount();
    const res = await tokenRequest(stack, { grant_type: 'password', username, password }, { localAddress: freshLoopback() });
    expectLimited(res, 'token-username');
    expect(passwordHashCount()).toBe(hashesBefore);
  });

  it('shares one bucket between spellings of a username that differ only in case', async () => {
    const { username } = await newUser();
    const ip = freshLoopback();
    for (let i = 0; i < perUsername(); i++)
      await tokenRequest(stack, { grant_type: 'password', username: username.toUpperCase(), password: 'x' }, { localAddress: ip });
    expectLimited(await tokenRequest(stack, { grant_type: 'password', username, password: 'x' }, { localAddress: ip }), 'token-username');
  });

  it('does not count a successful login against the username', async () => {
    const { username, password } = await newUser();
    const ip = freshLoopback();
    for (let i = 0; i < perUsername() - 1; i++) await tokenRequest(stack, { grant_type: 'password', username, password: 'wrong' }, { localAddress: ip });
    expect((await tokenRequest(stack, { grant_type: 'password', username, password }, { localAddress: ip })).status).toBe(200);
    // The success is given back once its response has finished: wait for the bucket to drop back.
    const bucket = `${stack.prefix}:rl:token-username:${createHash('sha256').update(username.toLowerCase()).digest('hex')}`;
    await until('the successful login to be given back', async () => Number(await stack.api.redis.get(bucket)) === perUsername() - 1);
    expect((await tokenRequest(stack, { grant_type: 'password', username, password: 'wrong' }, { localAddress: ip })).status).toBe(400);
    expectLimited(await tokenRequest(stack, { grant_type: 'password', username, password: 'wrong' }, { localAddress: ip }), 'token-username');
  });

  it('answers 429 to an address that has used up its token requests, whatever the usernames', async () => {
    const ip = freshLoopback();
    for (let i = 0; i < perIp(); i++) {
      const res = await tokenRequest(stack, { grant_type: 'password', username: uniqueName('spray'), password: 'x' }, { localAddress: ip });
      expect(res.status).toBe(400);
    }
    const hashesBefore = passwordHashCount();
    const limited = await tokenRequest(stack, { grant_type: 'password', username: uniqueName('spray'), password: 'x' }, { localAddress: ip });
    expectLimited(limited, 'token-ip');
    expect(passwordHashCount()).toBe(hashesBefore);
  });

  it('counts refresh grants against the address too', async () => {
    const ip = freshLoopback();
    for (let i = 0; i < perIp(); i++) await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: `${randomUUID()}.x` }, { localAddress: ip });
    expectLimited(await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: `${randomUUID()}.x` }, { localAddress: ip }), 'token-ip');
  });

  it('leaves other addresses alone when one is limited', async () => {
    const ip = freshLoopback();
    for (let i = 0; i <= perIp(); i++)
      await tokenRequest(stack, { grant_type: 'password', username: uniqueName('spray'), password: 'x' }, { localAddress: ip });
    const { username, password } = await newUser();
    expect((await tokenRequest(stack, { grant_type: 'password', username, password }, { localAddress: freshLoopback() })).status).toBe(200);
  });

  it('sends RateLimit and RateLimit-Policy on answers that are not limited', async () => {
    const res = await tokenRequest(stack, { grant_type: 'password', username: uniqueName('nobody'), password: 'x' }, { localAddress: freshLoopback() });
    expect(res.status).toBe(400);
    const ratelimit = ([] as string[]).concat(res.headers.ratelimit ?? []).join(', ');
    const policy = ([] as string[]).concat(res.headers['ratelimit-policy'] ?? []).join(', ');
    expect(ratelimit).toMatch(new RegExp(`"token-ip"; r=${perIp() - 1}; t=\\d+`));
    expect(ratelimit).toMatch(new RegExp(`"token-username"; r=${perUsername() - 1}; t=\\d+`));
    expect(policy).toContain(`"token-ip"; q=${perIp()}; w=60`);
    expect(policy).toContain(`"token-username"; q=${perUsername()}; w=60`);
  });
});

describe('job routes, per user or API key, by role', () => {
  const submit = (u: TestUser | { auth: { authorization: string } }) => stack.request('POST', '/v1/jobs', { headers: u.auth, body: pingJob });

  it("answers 429 to a member's submission beyond the member limit, and writes nothing", async () => {
    const u = await stack.user('member');
    for (let i = 0; i < jobWrite.member; i++) expect((await submit(u)).status).toBe(202);
    const limited = await submit(u);
    expectLimited(limited, 'jobs-write-member');
    expect(await countJobs(stack, { ownerId: u.id })).toBe(jobWrite.member);
  });

  it('gives operators their higher limit', async () => {
    const u = await stack.user('operator');
    for (let i = 0; i < jobWrite.operator; i++) expect((await submit(u)).status).toBe(202);
    expectLimited(await submit(u), 'jobs-write-operator');
  });

  it('gives viewers their lower read limit', async () => {
    const u = await stack.user('viewer');
    for (let i = 0; i < jobRead.viewer; i++) expect((await stack.request('GET', '/v1/jobs', { user: u })).status).toBe(200);
    expectLimited(await stack.request('GET', '/v1/jobs', { user: u }), 'jobs-read-viewer');
  });

  it('counts reads apart from writes, so polling does not eat the submit budget', async () => {
    const u = await stack.user('member');
    for (let i = 0; i < jobWrite.member; i++) await submit(u);
    expect((await submit(u)).status).toBe(429);
    expect((await stack.request('GET', '/v1/jobs', { user: u })).status).toBe(200);
  });

  it('counts requests that arrive together exactly, each against its own bucket (their counts share pipelines)', async () => {
    const [a, b] = [await stack.user('member'), await stack.user('member')];
    const statuses = await Promise.all(Array.from({ length: 4 * jobWrite.member }, (_, i) => submit(i % 2 ? a : b).then((r) => [i % 2, r.status] as const)));
    for (const who of [0, 1]) {
      const mine = statuses.filter(([w]) => w === who).map(([, status]) => status);
      expect(mine.filter((x) => x === 202)).toHaveLength(jobWrite.member);
      expect(mine.filter((x) => x === 429)).toHaveLength(mine.length - jobWrite.member);
    }
    expect(await countJobs(stack, { ownerId: a.id })).toBe(jobWrite.member);
    expect(await countJobs(stack, { ownerId: b.id })).toBe(jobWrite.member);
  });

  it('counts per user: one member at the limit does not limit another', async () => {
    const a = await stack.user('member');
    const b = await stack.user('member');
    for (let i = 0; i <= jobWrite.member; i++) await submit(a);
    expect((await submit(b)).status).toBe(202);
  });

  it("counts an API key in its owner's bucket: more keys buy no more budget (issue 16)", async () => {
    const u = await stack.user('member');
    const keys = [];
    for (const name of ['ci-1', 'ci-2']) {
      const created = await stack.request('POST', '/v1/auth/api-keys', { user: u, body: { name } });
      keys.push({ auth: { authorization: `Bearer ${created.json.key}` } });
    }
    const statuses = [];
    for (let i = 0; i < jobWrite.member; i++) statuses.push((await submit(i % 2 ? keys[0]! : u)).status);
    expect(statuses).toEqual(Array(jobWrite.member).fill(202));
    expect((await submit(keys[1]!)).status).toBe(429);
    expect((await submit(u)).status).toBe(429);
  });

  it('shares the count between API processes on the same Redis', async () => {
    const { startApi } = await import('../../api/main.ts');
    const second = await startApi(stack.env);
    try {
      const u = await stack.user('member');
      const bases = [stack.base, `http://127.0.0.1:${second.port}`];
      const statuses: number[] = [];
      for (let i = 0; i <= jobWrite.member; i++) {
        const res = await fetch(`${bases[i % 2]}/v1/jobs`, {
          method: 'POST',
          headers: { ...u.auth, 'content-type': 'application/json' },
          body: JSON.stringify(pingJob),
        });
        statuses.push(res.status);
      }
      expect(statuses).toEqual([...Array(jobWrite.member).fill(202), 429]);
    } finally {
      await second.stop();
    }
  });

  it("keeps the counters under the stack's key prefix", async () => {
    const keys = await stack.api.redis.keys(`${stack.prefix}:rl:*`);
    expect(keys.some((k) => k.startsWith(`${stack.prefix}:rl:jobs-write:user:`))).toBe(true);
    expect(keys.some((k) => k.startsWith(`${stack.prefix}:rl:token-ip:`))).toBe(true);
  });
});

describe('the rest of the API, per user or API key, by role', () => {
  const agent = (u: TestUser, i: number) => stack.request('POST', '/v1/agents', { user: u, body: { name: `a${i}`, persona: 'You are terse.' } });

  it('shares one write budget across agents, discussions and keys, apart from the job budget', async () => {
    const u = await stack.user('member');
    const a0 = await agent(u, 0);
    const a1 = await agent(u, 1);
    const room = await stack.request('POST', '/v1/discussions', { user: u, body: { topic: 'Tabs or spaces?', agentIds: [a0.json.id, a1.json.id] } });
    const key = await stack.request('POST', '/v1/auth/api-keys', { user: u, body: { name: 'k' } });
    expect([a0.status, a1.status, room.status, key.status]).toEqual([201, 201, 201, 201]);
    const limited = await agent(u, 2);
    expectLimited(limited, 'api-write-member');
    expect(await stack.api.db('agents').where({ owner_id: u.id }).count({ n: '*' }).first()).toMatchObject({ n: 2 });
    // Reads and job submissions have budgets of their own.
    expect((await stack.request('GET', '/v1/agents', { user: u })).status).toBe(200);
    expect((await stack.request('POST', '/v1/jobs', { user: u, body: pingJob })).status).toBe(202);
  });

  it('counts code, collections and knowledge in the same budget', async () => {
    const u = await stack.user('member');
    const writes = ['/v1/code/repositories', '/v1/collections', '/v1/knowledge/sources'];
    // Refused bodies count too: a caller cannot probe for free.
    for (let i = 0; i < apiWrite.member; i++) expect((await stack.request('POST', writes[i % writes.length]!, { user: u, body: {} })).status).toBe(400);
    for (const path of writes) expectLimited(await stack.request('POST', path, { user: u, body: {} }), 'api-write-member');
    const reads = ['/v1/code/repositories', '/v1/collections', '/v1/knowledge/sources'];
    for (let i = 0; i < apiRead.member; i++) expect((await stack.request('GET', reads[i % reads.length]!, { user: u })).status).toBe(200);
    expectLimited(await stack.request('GET', '/v1/knowledge/search?q=anything', { user: u }), 'api-read-member');
    // A collection query is a POST that reads: it is in the read budget.
    expectLimited(await stack.request('POST', '/v1/collections/00000000-0000-4000-8000-000000000000/query', { user: u, body: {} }), 'api-read-member');
  });

  it('does not count the token endpoint, which has limiters of its own', async () => {
    const { username, password } = await newUser();
    const ip = freshLoopback();
    for (let i = 0; i < apiWrite.member + 1; i++)
      expect((await tokenRequest(stack, { grant_type: 'password', username, password }, { localAddress: ip })).status).toBe(200);
  });
});

describe('metrics', () => {
  it('counts rate-limit hits and auth failures for Prometheus', async () => {
    const { username } = await newUser();
    const ip = freshLoopback();
    for (let i = 0; i <= perUsername(); i++) await tokenRequest(stack, { grant_type: 'password', username, password: 'wrong' }, { localAddress: ip });
    await rawRequest(stack, 'GET', '/v1/auth/me', { headers: { authorization: 'Bearer not-a-jwt' } });
    const op = await stack.user('operator');
    const text = (await stack.request('GET', '/metrics', { user: op })).text;
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
    expect(value(/^parley_rate_limited_total\{limiter="token-username"\} (\d+)/m)).toBeGreaterThanOrEqual(1);
    expect(value(/^parley_auth_failures_total\{kind="password",reason="invalid_grant"\} (\d+)/m)).toBeGreaterThanOrEqual(perUsername());
    expect(value(/^parley_auth_failures_total\{kind="bearer",reason="malformed_token"\} (\d+)/m)).toBeGreaterThanOrEqual(1);
  });
});
