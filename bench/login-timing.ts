/**
 * `POST /v1/auth/token`: does a wrong password take as long as an unknown
 * username? If not, response time tells an attacker which usernames exist.
 *
 * Baseline (A): one bare argon2id verification at Parley's parameters
 * (api/auth/passwords.ts), timed in-process: the floor of any login answer.
 * Parley (B): the real token endpoint over HTTP, alternating wrong-password
 * and unknown-username requests (the same body shape, a fresh unknown name
 * each time), so drift hits both alike.
 *
 * Reports medians and p90 of each, and the ratio unknown / wrong. Target:
 * the ratio's median within 0.8-1.25. Rate limits are raised for the run
 * (the per-username and per-IP token limits would otherwise answer 429).
 *
 * Env: BENCH_LOGINS (default 40 of each kind per pair), BENCH_PAIRS (3).
 */
import { randomUUID } from 'node:crypto';
import { hash, verify } from '@node-rs/argon2';
import { startApi } from '../api/main.ts';
import { argonParams } from '../api/auth/passwords.ts';
import { cleanup, parleyEnv, teardownOnExit, uniquePrefix } from './internal/parley.ts';
import { fmt, median, summarize } from './internal/stats.ts';

const N = Number(process.env.BENCH_LOGINS ?? 40);
const PAIRS = Number(process.env.BENCH_PAIRS ?? 3);
const prefix = uniquePrefix('login');
const env = parleyEnv(prefix, { PARLEY_RATE_TOKEN_PER_IP: '100000000', PARLEY_RATE_TOKEN_PER_USERNAME: '100000000' });
const api = await startApi(env);
const base = `http://127.0.0.1:${api.port}`;
const username = `bench-${randomUUID().slice(0, 8)}`;
const user = await api.auth.users.create({ username, password: `pw-${randomUUID()}`, role: 'member' });
const done = teardownOnExit(async () => {
  await cleanup({ redis: api.redis, db: api.db, prefixes: [prefix], userIds: [user.id] });
  await api.stop();
});

async function login(name: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', username: name, password: 'not-the-password' }),
  });
  await res.text();
  const ms = performance.now() - t0;
  if (res.status !== 400) throw new Error(`expected 400 invalid_grant, got ${res.status}`);
  return ms;
}

const stored = await hash('some password', argonParams);
async function bare(): Promise<number> {
  const t0 = performance.now();
  await verify(stored, 'not-the-password');
  return performance.now() - t0;
}

console.log(
  `login-timing: ${N} logins of each kind per pair, pairs=${PAIRS}, argon2id m=${argonParams.memoryCost} KiB t=${argonParams.timeCost} p=${argonParams.parallelism}`,
);
// Warm-up: JIT, connections, the timing equaliser's dummy hash.
for (let i = 0; i < 5; i++) (await login(username), await login(`nobody-${randomUUID().slice(0, 8)}`), await bare());

const ratios: number[] = [];
const all = { bare: [] as number[], wrong: [] as number[], unknown: [] as number[] };
for (let p = 1; p <= PAIRS; p++) {
  const bareMs: number[] = [];
  const wrong: number[] = [];
  const unknown: number[] = [];
  for (let i = 0; i < N; i++) {
    bareMs.push(await bare());
    wrong.push(await login(username));
    unknown.push(await login(`nobody-${randomUUID().slice(0, 8)}`));
  }
  const [a, w, u] = [summarize(bareMs), summarize(wrong), summarize(unknown)];
  const ratio = u.p50 / w.p50;
  ratios.push(ratio);
  all.bare.push(...bareMs);
  all.wrong.push(...wrong);
  all.unknown.push(...unknown);
  console.log(
    `pair ${p}: A bare argon2 verify p50 ${fmt(a.p50)} ms   B wrong password p50 ${fmt(w.p50)} p90 ${fmt(w.p90)} ms   unknown user p50 ${fmt(u.p50)} p90 ${fmt(u.p90)} ms   unknown/wrong ${fmt(ratio, 3)}`,
  );
}
const r = median(ratios);
const [a, w, u] = [summarize(all.bare), summarize(all.wrong), summarize(all.unknown)];
console.log(`== login-timing: over ${PAIRS} pairs ==`);
console.log(`bare argon2id verify              p50 ${fmt(a.p50)} ms  p90 ${fmt(a.p90)} ms`);
console.log(`wrong password (HTTP 400)         p50 ${fmt(w.p50)} ms  p90 ${fmt(w.p90)} ms`);
console.log(`unknown username (HTTP 400)       p50 ${fmt(u.p50)} ms  p90 ${fmt(u.p90)} ms`);
console.log(`unknown/wrong p50 ratio, median of pairs ${fmt(r, 3)}   target: 0.8-1.25   ${r >= 0.8 && r <= 1.25 ? 'PASS' : 'MISS'}`);
await done();
