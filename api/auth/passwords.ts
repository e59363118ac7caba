/**
 * Password hashing: argon2id at OWASP's parameters (m = 19 MiB, t = 2, p = 1),
 * via @node-rs/argon2, whose async calls run on libuv's thread pool, off the
 * event loop. Unknown users are checked against a dummy hash, so a wrong
 * password and an unknown user cost the same time.
 */
import { hash, verify } from '@node-rs/argon2';

export const argonParams = {
  // 2 = Algorithm.Argon2id (a const enum, which verbatimModuleSyntax cannot import).
  algorithm: 2,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
} as const;

let hashCount = 0;
/** Password hash computations (hash + verify) since start; tests use it to prove rate limits run before hashing. */
export function passwordHashCount(): number {
  return hashCount;
}

export async function hashPassword(password: string): Promise<string> {
  hashCount += 1;
  return hash(password, argonParams);
}

let dummy: Promise<string> | undefined;
const dummyHash = () => (dummy ??= hash('parley-timing-equaliser', argonParams));

/**
 * Computes the stand-in hash for unknown users ahead of the first login, so
 * not even the first unknown-user attempt takes longer than a wrong password.
 */
export async function prepareTimingEqualiser(): Promise<void> {
  await dummyHash();
}

/** Verifies; with `stored` undefined (no such user) burns the same work and returns false. */
export async function verifyPassword(stored: string | null | undefined, password: string): Promise<boolean> {
  const target = stored ?? (await dummyHash());
  hashCount += 1;
  const ok = await verify(target, password).catch(() => false);
  return ok && stored !== undefined && stored !== null;
}
