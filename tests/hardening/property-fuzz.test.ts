/**
 * Property-based fuzz of every operation's request schemas (fast-check), in
 * `npm test`: the real API in this process on the real Redis and Postgres,
 * requests generated from the OpenAPI document's own request schemas, valid
 * or with one part broken (tests/support/openapi-fuzz.ts). For every answer:
 *
 * - never a 5xx;
 * - the status, content type and body are what the document declares for it;
 * - a 4xx is problem+json (the token endpoint: RFC 6749 JSON) with a stable
 *   `code` from shared/errors.ts;
 * - a 4xx wrote nothing: the caller's jobs, agents, discussions, API keys,
 *   sessions, budgets and user row are as they were, and no queue took a job.
 *   (The audit log and the failed-login counters are written on denials by
 *   design, so they are not in the fingerprint.)
 *
 * Each operation is called as the least-privileged role that holds its
 * permission (a public one as a member); one request in ten goes without
 * credentials or with bad ones. Not fuzzed: logout and revoking all sessions,
 * which end the fuzzer's own session. Rate limits are raised so requests reach
 * the routes (the limiters have their own suites); no workers run, so accepted
 * jobs stay queued and nothing changes between requests but the requests.
 *
 * Runs: PARLEY_PROPERTY_RUNS in all (default 2,500), split evenly over the
 * 56 operations fuzzed (44 each, 2,464 requests), so the file stays under a
 * minute on two shared cores (25 s alone on an idle machine, 50 s on a busy one). Raise it for a deeper run, e.g.
 * PARLEY_PROPERTY_RUNS=56000 for 1,000 per operation. The seed is
 * printed on a failure (fast-check's own report), to replay with PARLEY_PROPERTY_SEED.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { roleHas, type Permission, type Role } from '../../api/auth/permissions.ts';
import { ApiErrorCode } from '../../shared/errors.ts';
import { QueueName } from '../../shared/index.ts';
import { createPrivateDatabase } from '../support/private-database.ts';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { requestsFor, responseValidator, type FuzzRequest, type OpenApiDoc } from '../support/openapi-fuzz.ts';

const TOTAL_RUNS = Number(process.env.PARLEY_PROPERTY_RUNS ?? 2500);
const SEED = process.env.PARLEY_PROPERTY_SEED ? Number(process.env.PARLEY_PROPERTY_SEED) : undefined;
const excluded = new Set(['logout', 'revokeAllSessions']);
const generous = 'admin=1000000,operator=1000000,member=1000000,viewer=1000000,anonymous=1000000';

const codes = new Set<string>(ApiErrorCode.options);
const users = {} as Record<Role, TestUser>;

// Its own database: what the valid requests write (a global or role budget, say) must not reach the suites
// sharing the test database. Up front, to name one test per operation: the stack and its document.
const database = await createPrivateDatabase('fuzz');
const stack: Stack = await startStack({
  workers: false,
  env: {
    DATABASE_URL: database.url,
    PARLEY_RATE_JOBS_WRITE: generous,
    PARLEY_RATE_JOBS_READ: generous,
    PARLEY_RATE_API_WRITE: generous,
    PARLEY_RATE_API_READ: generous,
    PARLEY_RATE_TOKEN_PER_IP: '1000000',
    PARLEY_RATE_TOKEN_PER_USERNAME: '1000000',
    PARLEY_ACCESS_TOKEN_TTL_S: '3600',
  },
});
const doc = (await stack.request('GET', '/openapi.json')).json as OpenApiDoc;
const validate = responseValidator(doc);
const operations = Object.entries(doc.paths)
  .flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({
      path,
      method,
      operationId: op.operationId,
      // The permission, as the document says it ("Needs the `jobs:read` permission."); public otherwise.
      access: /Needs the `([^`]+)` permission/.exec((op as { description?: string }).description ?? '')?.[1] ?? 'public',
    })),
  )
  .filter((o) => !excluded.has(o.operationId));
const runsPerOperation = Math.max(10, Math.floor(TOTAL_RUNS / operations.length));

beforeAll(async () => {
  for (const role of ['viewer', 'member', 'operator', 'admin'] as const) users[role] = await stack.user(role);
});
afterAll(async () => {
  await stack.stop();
  await database.drop();
});

/** What a 4xx must leave as it was: the fuzzing users' rows and the queues of this stack. */
async function fingerprint(): Promise<string> {
  const ids = Object.values(users).map((u) => u.id);
  const row = (
    await stack.api.db.raw(
      `select
      (select count(*) || ':' || coalesce(max(updated_at)::text, '') from jobs where key_prefix = ?) as jobs,
      (select count(*) || ':' || coalesce(max(updated_at)::text, '') from agents where owner_id = any(?)) as agents,
      (select count(*) || ':' || coalesce(max(updated_at)::text, '') from discussions where owner_id = any(?)) as discussions,
      (select count(*) || ':' || count(revoked_at) || ':' || coalesce(max(expires_at)::text, '') from api_keys where user_id = any(?)) as api_keys,
      (select count(*) || ':' || count(revoked_at) from sessions where user_id = any(?)) as sessions,
      (select count(*) || ':' || coalesce(max(updated_at)::text, '') from budgets where updated_by = any(?)) as budgets,
      (select string_agg(role || disabled::text || updated_at::text || password_hash, ',' order by id) from users where id = any(?)) as users`,
      [stack.prefix, ids, ids, ids, ids, ids, ids],
    )
  ).rows[0] as Record<string, string>;
  const queues = await stack.api.redis.mget(...QueueName.options.map((q) => `${stack.prefix}:bull:{${q}}:${q}:id`));
  return JSON.stringify({ ...row, queues });
}

function callerFor(access: string): Role {
  if (access === 'public') return 'member';
  return (['viewer', 'member', 'operator', 'admin'] as const).find((r) => roleHas(r, access as Permission)) ?? 'admin';
}

async function send(req: FuzzRequest, credentials: 'valid' | 'none' | 'bad', role: Role) {
  const headers: Record<string, string> = { ...req.headers };
  if (credentials === 'valid') headers.authorization ??= users[role].auth.authorization;
  else if (credentials === 'bad') headers.authorization = 'Bearer not-a-token';
  const res = await fetch(`${stack.base}${req.path}`, { method: req.method, headers, body: req.body });
  return { status: res.status, contentType: res.headers.get('content-type'), text: await res.text() };
}

describe(`property fuzz of the request schemas (${runsPerOperation} runs per operation, ${runsPerOperation * operations.length} in all)`, () => {
  it.each(operations)('$method $path ($operationId)', async ({ method, path, operationId, access }) => {
    const op = doc.paths[path]![method]!;
    const role = callerFor(access);
    const credentials = fc.oneof(
      { weight: 18, arbitrary: fc.constant('valid' as const) },
      { weight: 1, arbitrary: fc.constant('none' as const) },
      { weight: 1, arbitrary: fc.constant('bad' as const) },
    );
    let before = await fingerprint();
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(requestsFor(method, path, op, doc), credentials, async (req, cred) => {
        const res = await send(req, cred, role);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const where = `${req.method} ${req.path.length > 300 ? `${req.path.slice(0, 300)}… (${req.path.length} characters)` : req.path} (${req.note}, credentials ${cred}) → ${res.status} ${res.text.slice(0, 400)}`;
        expect(res.status, where).toBeLessThan(500);
        expect(validate(method, path, res.status, res.contentType, res.text), where).toEqual([]);
        const after = await fingerprint();
        if (res.status >= 400) {
          const body = JSON.parse(res.text) as { code?: string; error?: string };
          expect(res.contentType, where).toMatch(operationId === 'createToken' ? /^application\/json/ : /^application\/problem\+json/);
          expect(codes.has(body.code ?? ''), `${where}: code ${body.code}`).toBe(true);
          expect(after, `${where}: a ${res.status} wrote`).toBe(before);
        }
        before = after;
      }),
      { numRuns: runsPerOperation, endOnFailure: true, ...(SEED !== undefined ? { seed: SEED } : {}) },
    );
    // The fuzz reached past the front door: not every answer was a refusal of credentials.
    expect(
      [...statuses.keys()].some((s) => s !== 401 && s !== 403),
      `statuses: ${JSON.stringify([...statuses])}`,
    ).toBe(true);
  });
});
