/**
 * Helpers for the auth suites, on top of tests/harness.ts: form posts from a
 * chosen loopback source address (so per-IP limits can be exercised without
 * trusting X-Forwarded-For), fresh logins, tokens crafted with the stack's
 * real signing key, and row counts that prove a handler never ran.
 */
import { spawn } from 'node:child_process';
import { createHmac, generateKeyPairSync, randomUUID, sign as cryptoSign } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import jwt from 'jsonwebtoken';
import type { Stack, TestUser } from '../harness.ts';

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

/** One HTTP request with node:http, which (unlike fetch) can pick the source address. */
export function rawRequest(
  stack: Stack,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string | Buffer; localAddress?: string } = {},
): Promise<HttpResult> {
  const url = new URL(path, stack.base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method,
        headers: { ...(opts.body !== undefined ? { 'content-length': String(Buffer.byteLength(opts.body)) } : {}), ...opts.headers },
        localAddress: opts.localAddress,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: any;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/** POST /v1/auth/token, form-encoded. */
export function tokenRequest(
  stack: Stack,
  form: Record<string, string>,
  opts: { localAddress?: string; headers?: Record<string, string> } = {},
): Promise<HttpResult> {
  return rawRequest(stack, 'POST', '/v1/auth/token', {
    body: new URLSearchParams(form).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...opts.headers },
    localAddress: opts.localAddress,
  });
}

let loopback = 10 + Math.floor(Math.random() * 200);
/** A loopback source address no other test in this process has used: its own per-IP buckets. */
export function freshLoopback(): string {
  loopback += 1;
  return `127.0.${Math.floor(loopback / 250) % 250}.${(loopback % 250) + 2}`;
}

export const uniqueName = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

/** A new session for an existing test user (straight through the auth service, so no rate limit applies). */
export async function login(stack: Stack, user: TestUser): Promise<{ token: string; refreshToken: string; auth: { authorization: string } }> {
  const t = await stack.api.auth.grants.password({ username: user.username, password: user.password }, { ip: '127.0.0.1' });
  return { token: t.access_token, refreshToken: t.refresh_token, auth: { authorization: `Bearer ${t.access_token}` } };
}

/** The active signing key, read the way an attacker with database read access would. */
export async function activeKey(stack: Stack): Promise<{ kid: string; privatePem: string; publicPem: string }> {
  const row = await stack.api.db('signing_keys').whereNull('retired_at').orderBy('created_at', 'desc').first();
  return { kid: row.kid, privatePem: row.private_pem, publicPem: row.public_pem };
}

/** The claims of a real access token, for crafting variants of it. */
export function claimsOf(token: string): { sub: string; sid: string; role: string } {
  return jwt.decode(token) as { sub: string; sid: string; role: string };
}

const b64url = (v: object | string) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** A JWT with any header and payload, signed by `signer` over `header.payload` (or unsigned). */
export function rawJwt(header: object, payload: object, signer?: (input: string) => string): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${signer ? signer(input) : ''}`;
}

export const hs256 = (secret: string) => (input: string) => createHmac('sha256', secret).update(input).digest('base64url');

/** ES256 in JOSE form (r||s), as JWS requires. */
export const es256 = (privatePem: string) => (input: string) =>
  cryptoSign('sha256', Buffer.from(input), { key: privatePem, dsaEncoding: 'ieee-p1363' }).toString('base64url');

export function strangerKey(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** Jobs rows owned by a user, or carrying an idempotency key. */
export async function countJobs(stack: Stack, where: { ownerId?: string; idempotencyKey?: string }): Promise<number> {
  const q = stack.api.db('jobs');
  if (where.ownerId) q.where('owner_id', where.ownerId);
  if (where.idempotencyKey) q.where('idempotency_key', where.idempotencyKey);
  const [row] = await q.count({ n: '*' });
  return Number((row as { n: number | string }).n);
}

export const pingJob = { kind: 'system.ping', input: {} };

/** A problem body without the members that differ per request. */
export function stableProblem(body: Record<string, unknown>): Record<string, unknown> {
  const { requestId: _r, ...rest } = body;
  return rest;
}

/** Everything a response body must never contain: stack frames, file paths, source locations. */
export const leakPattern = /\n\s+at\s|\bat [\w.<>]+ \(|\/work\/|\/home\/|\/root\/|node_modules|\.ts:\d+|\.js:\d+|file:\/\//;

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Runs a project script (e.g. `scripts/user.ts`) as a real child process with the stack's environment. */
export function runScript(
  stack: Stack,
  script: string,
  args: string[],
  opts: { env?: Record<string, string | undefined>; stdin?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...stack.env, LOG_LEVEL: 'warn', ...opts.env };
  for (const [k, v] of Object.entries(opts.env ?? {})) if (v === undefined) delete env[k];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: repoRoot, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.stdin ?? '');
  });
}
