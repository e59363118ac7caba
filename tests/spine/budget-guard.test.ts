/**
 * The budget guard a streaming handler opens reads the job's reservation and
 * the rules version together. On a Redis Cluster those keys live in different
 * slots: a pipeline across them is refused by the client, and the guard would
 * fall back to "unguarded" (a log line, no enforcement while streaming). This
 * suite runs in both projects, on one Redis and on the 3-node cluster.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBudgets, type Budgets } from '../../platform/usage/index.ts';
import { startStack, type Stack, type TestUser } from '../harness.ts';

let stack: Stack;
let admin: TestUser;
let budgets: Budgets;

beforeAll(async () => {
  stack = await startStack({ workers: false });
  admin = await stack.user('admin');
  budgets = createBudgets({ db: stack.api.db, redis: stack.api.redis, prefix: await crossNodePrefix() });
});

/**
 * On the cluster, a key prefix whose rules-version key lives on another node than the `{budget}`-tagged
 * keys, so the case the guard must survive happens every run, not by the luck of a random prefix.
 * On one Redis (no cluster support), the stack's prefix.
 */
async function crossNodePrefix(): Promise<string> {
  const redis = stack.api.redis as unknown as { cluster(...args: string[]): Promise<unknown> };
  let ranges: [number, number][];
  try {
    ranges = ((await redis.cluster('SLOTS')) as [number, number][]).map(([a, b]) => [a, b]);
  } catch {
    return stack.prefix;
  }
  const nodeOf = async (key: string) => {
    const slot = Number(await redis.cluster('KEYSLOT', key));
    return ranges.findIndex(([a, b]) => slot >= a && slot <= b);
  };
  const tagged = await nodeOf(`${stack.prefix}:{budget}:job:x`);
  for (let i = 0; i < 64; i++) {
    const prefix = `${stack.prefix}-${i}`;
    if ((await nodeOf(`${prefix}:budget:rules-version`)) !== tagged) return prefix;
  }
  throw new Error('no prefix puts the rules version on another node');
}
afterAll(() => stack?.stop());

describe('budget guard', () => {
  it("opens with the owner's headroom (limit − used − reserved) and keeps enforcing as tokens stream", async () => {
    const u = await stack.user('member');
    const r = await stack.request('PUT', '/v1/admin/budgets', { user: admin, body: { scope: 'user', subject: u.id, period: 'day', limitTokens: 1000 } });
    expect(r.status).toBe(200);
    const owner = { id: u.id, role: 'member' };
    const other = randomUUID();
    expect((await budgets.reserve({ jobId: other, owner, tokens: 300 })).ok).toBe(true);
    const jobId = randomUUID();
    expect((await budgets.reserve({ jobId, owner, tokens: 100 })).ok).toBe(true);

    const guard = await budgets.guards(async () => undefined).open(jobId, 40);
    // Unguarded would answer undefined: the guard read the reservation and the rules, and computed the room left.
    expect(guard.maxCompletionTokens).toBe(1000 - 300 - 100 + (100 - 40));
    // Streaming past the day's room fails the job.
    await expect(guard.check(1000)).rejects.toMatchObject({ code: 'BUDGET_EXHAUSTED' });
    await budgets.release(other);
    await budgets.release(jobId);
  });
});
