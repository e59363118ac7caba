/**
 * `npm run keys -- list | rotate` (scripts/keys.ts), run as a real child
 * process against the test database: a rotation logs nobody out, the running
 * API accepts tokens of the new key at once and signs with it after its ring
 * reloads, and the rotation is audited.
 */
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { es256, rawJwt, runScript } from './helpers.ts';

let stack: Stack;
let user: TestUser;

beforeAll(async () => {
  stack = await startStack({ workers: false });
  user = await stack.user('member');
});
afterAll(() => stack?.stop());

const runCli = (args: string[]) => runScript(stack, 'scripts/keys.ts', args);

const me = (token: string) => stack.request('GET', '/v1/auth/me', { headers: { authorization: `Bearer ${token}` } });

describe('npm run keys', () => {
  it('rotate: a new signing key, old tokens still valid, new tokens accepted at once, audited', async () => {
    const oldKid = jwt.decode(user.token, { complete: true })!.header.kid!;
    const r = await runCli(['rotate']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { kid: string; retired: string[] };
    // Other suites share this database and may rotate too: assert on the keys this test knows.
    expect(out.kid).not.toBe(oldKid);
    expect(out.retired.length).toBeGreaterThanOrEqual(1);
    expect(out.retired).not.toContain(out.kid);
    expect((await stack.api.db('signing_keys').where({ kid: oldKid }).first()).retired_at).not.toBeNull();

    // Nobody is logged out.
    expect((await me(user.token)).status).toBe(200);
    // A token signed by the new key (as another, already reloaded process would issue) passes here at once.
    const row = await stack.api.db('signing_keys').where({ kid: out.kid }).first();
    const claims = jwt.decode(user.token) as Record<string, unknown>;
    const now = Math.floor(Date.now() / 1000);
    const byNewKey = rawJwt({ alg: 'ES256', typ: 'JWT', kid: out.kid }, { ...claims, iat: now, nbf: now, exp: now + 60 }, es256(row.private_pem));
    expect((await me(byNewKey)).status).toBe(200);

    const audit = await stack.api.db('audit_events').where({ action: 'keys.rotated', target_id: out.kid }).first();
    expect(audit).toMatchObject({ outcome: 'success', user_agent: 'cli', target_type: 'signing_key' });
    expect(audit.details).toEqual({ retired: out.retired });
  });

  it('list: every key with its flags, and never a private key', async () => {
    const r = await runCli(['list']);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/PRIVATE KEY/);
    const keys = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(keys.filter((k) => k.signing)).toHaveLength(1);
    expect(keys[0]).toMatchObject({ signing: true, verifying: true, retiredAt: null, alg: 'ES256' });
    expect(keys.every((k) => Object.keys(k).sort().join() === 'alg,createdAt,kid,retiredAt,signing,verifying')).toBe(true);
  });

  it('refuses an unknown command with exit code 2', async () => {
    const r = await runCli(['delete']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/usage: npm run keys -- list \| rotate/);
  });
});
