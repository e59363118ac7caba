/**
 * `npm run user -- create <username> --role <role>` (scripts/user.ts), run as
 * a real child process against the test database. The password comes from
 * PARLEY_NEW_USER_PASSWORD or stdin, never from arguments.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../harness.ts';
import { runScript, tokenRequest, uniqueName } from './helpers.ts';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ workers: false, env: { PARLEY_RATE_TOKEN_PER_IP: '100000' } });
});
afterAll(() => stack?.stop());

function runCli(args: string[], opts: { password?: string; stdin?: string } = {}) {
  return runScript(stack, 'scripts/user.ts', args, { env: { PARLEY_NEW_USER_PASSWORD: opts.password }, stdin: opts.stdin });
}

describe('npm run user -- create', () => {
  it('creates a user with the role given, password from PARLEY_NEW_USER_PASSWORD, who can then log in', async () => {
    const username = uniqueName('cli');
    const password = `pw-${randomUUID()}`;
    const r = await runCli(['create', username, '--role', 'operator'], { password });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ username, role: 'operator' });
    const login = await tokenRequest(stack, { grant_type: 'password', username, password });
    expect(login.status).toBe(200);
    expect(login.json.scope.split(' ')).toContain('jobs:any');
  });

  it('reads the password from stdin when the variable is unset', async () => {
    const username = uniqueName('cli');
    const password = `pw-${randomUUID()}`;
    const r = await runCli(['create', username, '--role', 'viewer'], { stdin: `${password}\n` });
    expect(r.code).toBe(0);
    expect((await tokenRequest(stack, { grant_type: 'password', username, password })).status).toBe(200);
  });

  it('refuses a password given as an argument, and creates nothing', async () => {
    const username = uniqueName('cli');
    const r = await runCli(['create', username, '--password', 'a-long-enough-password']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/refusing --password/);
    expect(await stack.api.auth.users.find(username)).toBeUndefined();
  });

  it('refuses a short password with exit code 1', async () => {
    const r = await runCli(['create', uniqueName('cli')], { password: 'short' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/at least 12/);
  });

  it('refuses a taken username with exit code 1', async () => {
    const username = uniqueName('cli');
    await runCli(['create', username], { password: `pw-${randomUUID()}` });
    const again = await runCli(['create', username], { password: `pw-${randomUUID()}` });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/taken/);
  });

  it('refuses an unknown role with exit code 2', async () => {
    const r = await runCli(['create', uniqueName('cli'), '--role', 'root'], { password: `pw-${randomUUID()}` });
    expect(r.code).toBe(2);
  });

  it('audits the creation as user.created from the CLI', async () => {
    const username = uniqueName('cli');
    await runCli(['create', username], { password: `pw-${randomUUID()}` });
    const user = await stack.api.auth.users.find(username);
    const row = await stack.api.db('audit_events').where({ action: 'user.created', target_id: user!.id }).first();
    expect(row).toMatchObject({ user_agent: 'cli', outcome: 'success' });
  });
});
