/**
 * PARLEY_TRUST_PROXY takes Express's trust-proxy forms that name what to
 * trust: a hop count, or proxy addresses and subnets. `true` (trust every
 * hop, so any client picks its own IP by sending X-Forwarded-For) is refused
 * (issue 16). The client IP is read back from the audit row of a failed login.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../platform/config.ts';
import { startStack, type Stack } from '../harness.ts';
import { tokenRequest, uniqueName } from './helpers.ts';

async function clientIpSeenBy(stack: Stack, forwardedFor: string): Promise<string> {
  const name = uniqueName('xff');
  await tokenRequest(stack, { grant_type: 'password', username: name, password: 'not-it' }, { headers: { 'x-forwarded-for': forwardedFor } });
  const row = await stack.api.db('audit_events').where({ action: 'auth.login', actor_name: name }).first();
  return row.ip as string;
}

describe('PARLEY_TRUST_PROXY forms', () => {
  it('refuses true, which would trust every hop', () => {
    expect(() => loadConfig({ PARLEY_TRUST_PROXY: 'true' })).toThrow(/PARLEY_TRUST_PROXY.*hop count/);
  });

  it('parses off, a hop count, and a list of addresses, subnets and named ranges', () => {
    expect(loadConfig({}).http.trustProxy).toBe(false);
    expect(loadConfig({ PARLEY_TRUST_PROXY: 'false' }).http.trustProxy).toBe(false);
    expect(loadConfig({ PARLEY_TRUST_PROXY: '0' }).http.trustProxy).toBe(false);
    expect(loadConfig({ PARLEY_TRUST_PROXY: '2' }).http.trustProxy).toBe(2);
    expect(loadConfig({ PARLEY_TRUST_PROXY: 'loopback, 10.0.0.0/8,fd00::/8, 192.168.1.7' }).http.trustProxy).toEqual([
      'loopback',
      '10.0.0.0/8',
      'fd00::/8',
      '192.168.1.7',
    ]);
  });

  it('refuses a list entry that is neither an address, a subnet nor a named range', () => {
    expect(() => loadConfig({ PARLEY_TRUST_PROXY: '10.0.0.0/8,proxy.internal' })).toThrow(/proxy\.internal/);
    expect(() => loadConfig({ PARLEY_TRUST_PROXY: '10.0.0.0/33' })).toThrow(/10\.0\.0\.0\/33/);
  });
});

for (const [label, value] of [
  ['a hop count', '1'],
  ['the proxy subnet', '127.0.0.0/8'],
] as const) {
  describe(`trusting ${label}`, () => {
    let stack: Stack;
    beforeAll(async () => {
      stack = await startStack({ workers: false, env: { PARLEY_TRUST_PROXY: value, PARLEY_RATE_TOKEN_PER_IP: '100000' } });
    });
    afterAll(() => stack?.stop());

    it('takes the client IP the trusted proxy saw, not one the client wrote itself', async () => {
      expect(await clientIpSeenBy(stack, '6.6.6.6, 203.0.113.9')).toBe('203.0.113.9');
    });
  });
}
